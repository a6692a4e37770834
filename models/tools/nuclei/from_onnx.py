"""Rebuild a trainable nuclei Model from a shipped model folder's ONNX files, so that a later training stage
can start from the weights in git rather than from a checkpoint that lived in a machine's /tmp.

The export ran in eval mode with constant folding, so each BatchNorm that follows a convolution was folded
into it (weight * gamma / sigma, bias beta - gamma * mu / sigma). gamma, beta and the running statistics cannot
be told apart afterwards, so they are re-derived: the folded weight goes into the convolution, and the
BatchNorm gets the mean m and variance v the convolution's output actually has on calibration tiles, with
gamma = sqrt(v + eps) and beta = m + folded bias. In eval mode that is exactly the exported function; in train
mode (batch statistics ~ m, v) it is close to it, which is what fine-tuning needs.
"""
import os

import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

from . import model as nm
from .evaluate import BOX_DECODER

CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _onnx_params(path, op_types):
    """[(op_type, [initializer arrays of its inputs, None where an input is not an initializer])] in graph
    order, for the nodes of op_types. The exporter writes nodes in the order the modules ran."""
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t).copy() for t in m.graph.initializer}
    return [(n.op_type, [inits.get(i) for i in n.input]) for n in m.graph.node if n.op_type in op_types]


def _call_order(module, run):
    """Convolutions, BatchNorms and Linears of `module` in the order `run()` calls them, and which BatchNorm
    reads each convolution's output directly (those are the pairs the export folded)."""
    order, made_by, bn_of = [], {}, {}
    hooks = []

    def after(mod, inputs, output):
        if mod not in order:
            order.append(mod)
        if isinstance(mod, CONVS):
            made_by[id(output)] = mod

    def before(mod, inputs):
        conv = made_by.get(id(inputs[0]))
        if conv is not None:
            bn_of[conv] = mod

    for sub in module.modules():
        if isinstance(sub, CONVS + (nn.Linear, nn.BatchNorm2d)):
            hooks.append(sub.register_forward_hook(after))
        if isinstance(sub, nn.BatchNorm2d):
            hooks.append(sub.register_forward_pre_hook(before))
    with torch.no_grad():
        run()
    for h in hooks:
        h.remove()
    return order, bn_of


def _load(module, onnx_path, run):
    """Copy the file's weights into `module`, pairing its layers with the graph's nodes in run order. Returns
    the folded pairs ({conv: folded bias}, {conv: its BatchNorm}), whose BatchNorms are identity for now."""
    order, bn_of = _call_order(module, run)
    convs = [m for m in order if isinstance(m, CONVS)]
    linears = [m for m in order if isinstance(m, nn.Linear)]
    nodes = _onnx_params(onnx_path, {"Conv", "ConvTranspose", "Gemm", "BatchNormalization"})
    conv_nodes = [p for t, p in nodes if t in ("Conv", "ConvTranspose")]
    # a BatchNorm was folded where its convolution has no bias of its own but a bias in the file (torch's
    # exporter folds Conv+BatchNorm, not ConvTranspose+BatchNorm)
    folded_bns = {bn_of[c] for c, p in zip(convs, conv_nodes)
                  if c.bias is None and c in bn_of and len(p) > 2 and p[2] is not None}
    plain_bns = [m for m in order if isinstance(m, nn.BatchNorm2d) and m not in folded_bns]
    gemm_nodes = [p for t, p in nodes if t == "Gemm"]
    bn_nodes = [p for t, p in nodes if t == "BatchNormalization"]
    if (len(conv_nodes), len(gemm_nodes), len(bn_nodes)) != (len(convs), len(linears), len(plain_bns)):
        raise ValueError(f"{onnx_path}: {len(conv_nodes)} convs, {len(gemm_nodes)} gemms, {len(bn_nodes)} "
                         f"batchnorms, the model has {len(convs)}, {len(linears)}, {len(plain_bns)}: "
                         "not this architecture")
    folded = {}   # conv -> folded bias, for the calibration below
    with torch.no_grad():
        for conv, params in zip(convs, conv_nodes):
            w, b = params[1], params[2] if len(params) > 2 else None
            have, want = tuple(w.shape), tuple(conv.weight.shape)
            if have[0] == want[0] and have[2:] == want[2:] and have[1] < want[1]:
                # a layer that gained input channels (appended): the new ones start at zero, so the rebuilt
                # model still computes what the file does
                print(f"{onnx_path}: a conv grows from {have[1]} to {want[1]} input channels, new ones zero")
                conv.weight.zero_()
                conv.weight[:, :have[1]].copy_(torch.from_numpy(w))
            elif have != want:
                raise ValueError(f"{onnx_path}: a conv weight {have} where the model has {want}")
            else:
                conv.weight.copy_(torch.from_numpy(w))
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(b))
            elif conv in bn_of and bn_of[conv] in folded_bns:
                bn = bn_of[conv]
                folded[conv] = torch.from_numpy(b)
                # identity BatchNorm plus the folded bias: eval-mode output equals the export's
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(folded[conv])
            elif b is not None:
                raise ValueError(f"{onnx_path}: a biased conv where the model has neither bias nor BatchNorm")
        for lin, params in zip(linears, gemm_nodes):
            lin.weight.copy_(torch.from_numpy(params[1]))
            lin.bias.copy_(torch.from_numpy(params[2]))
        for bn, params in zip(plain_bns, bn_nodes):
            scale, bias, mean, var = params[1:5]
            bn.weight.copy_(torch.from_numpy(scale))
            bn.bias.copy_(torch.from_numpy(bias))
            bn.running_mean.copy_(torch.from_numpy(mean))
            bn.running_var.copy_(torch.from_numpy(var))
    return folded, bn_of


def _calibrate(folded, bn_of, run):
    """Give each folded BatchNorm the statistics its convolution's output has (see the module docstring)."""
    sums = {c: [0.0, 0.0, 0] for c in folded}
    hooks = []

    def stat(mod, inputs, out):
        dims = [0, 2, 3]
        s = sums[mod]
        s[0] = s[0] + out.sum(dims)
        s[1] = s[1] + (out * out).sum(dims)
        s[2] += out.numel() // out.shape[1]

    for c in folded:
        hooks.append(c.register_forward_hook(stat))
    with torch.no_grad():
        run()
        for h in hooks:
            h.remove()
        for c, (s1, s2, n) in sums.items():
            m = s1 / n
            v = (s2 / n - m * m).clamp(min=0.0)
            bn = bn_of[c]
            bn.running_mean.copy_(m)
            bn.running_var.copy_(v)
            bn.weight.copy_(torch.sqrt(v + bn.eps))
            bn.bias.copy_(m + folded[c])


def load_model_folder(folder, images, coords, labels):
    """A Model with the weights of folder's encoder.onnx, decoder_low_res.onnx (the click decoder) and
    decoder_box_low_res.onnx (the box decoder; a folder from before the split, such as nuclei-v2, has one
    decoder for both, which then starts both), calibrated on `images` (normalised [B,3,S,S]) with one click per
    image (coords [B,N,2], labels [B,N]) and a box around each click."""
    model = nm.Model().eval()
    b = images.shape[0]
    zeros = (torch.zeros(b, 1, nm.L, nm.L), torch.zeros(b))
    box_coords = torch.stack([coords[:, 0] - 8.0, coords[:, 0] + 8.0], 1)
    box_labels = torch.tensor([[2.0, 3.0]] * b)

    def run_enc():
        return model.encoder(images)

    def run_dec():
        return model.decoder(model.encoder(images), coords, labels, *zeros)

    def run_box():
        return model.box_decoder(model.encoder(images), box_coords, box_labels, *zeros)

    box_file = os.path.join(folder, BOX_DECODER)
    if not os.path.exists(box_file):
        box_file = os.path.join(folder, "decoder_low_res.onnx")
    for module, path, run in ((model.encoder, os.path.join(folder, "encoder.onnx"), run_enc),
                              (model.decoder, os.path.join(folder, "decoder_low_res.onnx"), run_dec),
                              (model.box_decoder, box_file, run_box)):
        folded, bn_of = _load(module, path, run)
        _calibrate(folded, bn_of, run)
    return model
