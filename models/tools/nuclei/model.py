"""A compact promptable segmenter with SAM's two-part ONNX interface (nuclei-v3).

encoder: image [B,3,256,256] (SAM-normalised, zero-padded) -> image_embeddings [B,176,32,32]
  channels 0..63: stride-8 context features (a small U-Net-ish pyramid down to stride 16);
  channels 64..127: stride-4 detail features (16 channels) packed space-to-depth (2x2) into stride 8;
  channels 128..175: a dense per-pixel head at stride 2 (128x128), packed 4x4 into stride 8: nucleus
  foreground logit and each pixel's vote for the centre of its nucleus (an offset, in units of VOTE_UNIT
  model pixels). The votes are what lets a click pick out one nucleus among touching ones.
decoder: prompts are rasterised in-graph (Gaussians of positive/negative points, a soft box map). Each point
  reads the centre votes around it (a foreground-weighted soft gather) and marks every pixel voting for the
  same centre ("same nucleus" maps, positive/negative/box). Those maps, the foreground, the previous mask and
  the embedding go through three depthwise-separable residual blocks at 32x32 (dilations 1, 2, 4), a learned
  x2 upsampling fused with the stride-4 detail at 64x64, 2x2 sub-pixel outputs to 128x128, and a last 1x1
  correction from the 128x128 maps -> 4 mask logits at 128x128 (index 0 single-mask, 1..3 multimask) and an
  IoU head on pooled features.
Two decoders of that design share the encoder: one for clicks, whose last correction also sees sharp (sigma 1.5
px) click maps at 128x128 so that a click on a thin boundary error can move that boundary, and one for any
prompt with a box. One decoder serving both lost box IoU whenever clicks were trained more (0.80 -> 0.75):
the two kinds of prompt pulled the same 23k weights apart. The engine picks the decoder by the prompt.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

S = 256          # input_size
E = 32           # embedding side
L = 128          # low-res mask side (= 4 E)
C_SEM = 64
C_DET = 16       # detail channels at stride 4, packed to 4*16 = 64 at stride 8
C_DENSE = 3      # foreground logit, vote dy, vote dx at stride 2, packed to 16*3 = 48 at stride 8
C = C_SEM + 4 * C_DET + 16 * C_DENSE
M = 4
VOTE_UNIT = 16.0   # offsets are predicted in units of 16 model pixels (keeps the regression targets ~1)
SIG_GATHER = 3.0   # model px: the neighbourhood of a click whose votes it reads
TAU_SAME = 4.0     # model px: how close two votes must be to count as the same nucleus


def cbr(cin, cout, stride=1, dil=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dil, dilation=dil, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def space_to_depth(x, c, h, k=2):
    # [B,c,kh,kh] -> [B,k*k*c,h,h] with channel order (c, dy, dx); explicit reshape/transpose
    b = x.shape[0]
    x = x.reshape(b, c, h, k, h, k).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * k * k, h, h)


def depth_to_space(x, c, h, k=2):
    # inverse of space_to_depth: [B,k*k*c,h,h] -> [B,c,kh,kh]
    b = x.shape[0]
    x = x.reshape(b, c, k, k, h, h).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c, k * h, k * h)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 16, 2)                                   # 128
        self.l4 = nn.Sequential(cbr(16, 32, 2), cbr(32, 32))         # 64
        self.l8 = nn.Sequential(cbr(32, 64, 2), cbr(64, 64), cbr(64, 64, dil=2))       # 32
        self.l16 = nn.Sequential(cbr(64, 128, 2), cbr(128, 128), cbr(128, 128, dil=2))  # 16
        self.up = nn.Sequential(nn.ConvTranspose2d(128, 64, 2, 2, bias=False), nn.BatchNorm2d(64))
        self.fuse = cbr(64, 64)
        self.sem = nn.Conv2d(64, C_SEM, 1)
        # a light U-Net decoder back to stride 2 for the dense head
        self.up8 = nn.Sequential(nn.ConvTranspose2d(64, 32, 2, 2, bias=False), nn.BatchNorm2d(32))
        self.fuse4 = cbr(32, 32)
        self.up4 = nn.Sequential(nn.ConvTranspose2d(32, 16, 2, 2, bias=False), nn.BatchNorm2d(16))
        self.fuse2 = cbr(16, 16)
        self.det = nn.Conv2d(32, C_DET, 1)
        self.dense = nn.Conv2d(16, C_DENSE, 1)

    def features(self, x):
        """(embedding, dense [B,3,128,128]) - the dense head unpacked, for the training losses."""
        f2 = self.stem(x)
        f4 = self.l4(f2)
        f8 = self.l8(f4)
        f16 = self.l16(f8)
        s = self.fuse(F.relu(f8 + self.up(f16)))
        u4 = self.fuse4(F.relu(f4 + self.up8(s)))
        u2 = self.fuse2(F.relu(f2 + self.up4(u4)))
        dense = self.dense(u2)
        emb = torch.cat([self.sem(s), space_to_depth(self.det(u4), C_DET, E),
                         space_to_depth(dense, C_DENSE, E, 4)], 1)
        return emb, dense

    def forward(self, x):
        return self.features(x)[0]


class DWBlock(nn.Module):
    def __init__(self, c, dil=1):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, 1, padding=dil, dilation=dil, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bn2(self.pw(F.relu(self.bn1(self.dw(x))))))


def _sum_clip(ey, ex, w):
    """Sum over points of w * separable Gaussians, clipped at 1: ey, ex [B,N,R], w [B,N,1] -> [B,1,R,R].
    It equals the max over points wherever at most one point reaches a pixel, and clicks on one nucleus
    saturate at 1 as the max did. Why not the max: tract 0.23's Reduce<Max> over a middle axis runs per
    output pixel (3 ms for one 128x128 map), while this is one small MatMul."""
    return torch.clamp(torch.matmul((ey * w).transpose(1, 2), ex), max=1.0).unsqueeze(1)


def _one_matmul(x):
    """The identity (a Max with -3e38, below any value these maps take), placed between a Concat and the 1x1
    convolution that reads it. Without it tract splits the convolution into one MatMul per concatenated part
    (its concat-einsum pass), and in wasm each part of a 128x128 or 64x64 map costs about what the whole
    would: the three such convolutions took 7.5 of a click decode's 23 ms in the worker."""
    return torch.clamp(x, min=-3.0e38)


def _grid(r):
    # centres of an r-cell grid over the S-pixel model input, in model-input pixels
    return (torch.arange(r, dtype=torch.float32) + 0.5) * (S / r)


class Decoder(nn.Module):
    SIG32 = (6.0, 16.0)
    SIG64 = (2.5,)
    SIG128 = (1.5,)    # the click decoder's sharp maps (click_maps128)

    def __init__(self, ch=48, click_maps128=False):
        super().__init__()
        self.click_maps128 = click_maps128
        self.register_buffer("g32", _grid(E), persistent=False)
        self.register_buffer("g64", _grid(2 * E), persistent=False)
        self.register_buffer("g128", _grid(L), persistent=False)
        n_same = 4                          # same-nucleus pos/neg/box + foreground probability
        n32 = 2 * len(self.SIG32) + 3 + n_same   # pos/neg per sigma, box, mask, has_mask
        n64 = 2 * len(self.SIG64) + 1 + 4 + n_same  # pos/neg, box, mask (128 -> 64 space-to-depth)
        self.inp = nn.Sequential(nn.Conv2d(C_SEM + n32, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU())
        self.blocks = nn.Sequential(DWBlock(ch, 1), DWBlock(ch, 2), DWBlock(ch, 4))
        self.iou = nn.Sequential(nn.Linear(2 * ch, 32), nn.ReLU(), nn.Linear(32, M))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(ch, 24, 2, 2, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.fuse1 = nn.Sequential(nn.Conv2d(24 + C_DET + n64, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.blk1 = DWBlock(24, 1)
        self.out = nn.Conv2d(24, 4 * M, 1)   # 2x2 sub-pixels per mask -> depth-to-space to 128
        n128 = n_same + 1 + (2 * len(self.SIG128) if click_maps128 else 0)
        self.final = nn.Conv2d(n128, M, 1)   # correction at 128 from the same-nucleus maps, the mask (+ clicks)
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)

    @staticmethod
    def _raster(coords, labels, g, sigmas, tau, box=True):
        x = coords[:, :, 0]
        y = coords[:, :, 1]
        dx2 = (x.unsqueeze(2) - g) ** 2                           # B,N,R
        dy2 = (y.unsqueeze(2) - g) ** 2
        pos = (labels == 1.0).float().unsqueeze(2)                # B,N,1
        neg = (labels == 0.0).float().unsqueeze(2)
        maps = []
        for s in sigmas:
            ey = torch.exp(dy2 * (-0.5 / (s * s)))
            ex = torch.exp(dx2 * (-0.5 / (s * s)))
            maps.append(_sum_clip(ey, ex, pos))
            maps.append(_sum_clip(ey, ex, neg))
        if not box:
            return maps
        is2 = (labels == 2.0).float()
        is3 = (labels == 3.0).float()
        has_box = torch.amax(is2, dim=1, keepdim=True)            # B,1
        x0 = torch.sum(is2 * x, dim=1, keepdim=True)
        y0 = torch.sum(is2 * y, dim=1, keepdim=True)
        x1 = torch.sum(is3 * x, dim=1, keepdim=True)
        y1 = torch.sum(is3 * y, dim=1, keepdim=True)
        bx = torch.sigmoid((g - x0) / tau) * torch.sigmoid((x1 - g) / tau) * has_box   # B,R
        by = torch.sigmoid((g - y0) / tau) * torch.sigmoid((y1 - g) / tau)
        maps.append((by.unsqueeze(2) * bx.unsqueeze(1)).unsqueeze(1))
        return maps

    def _same(self, dense, coords, labels):
        """Same-nucleus maps at 128x128: for each point, the pixels whose centre vote is near the centre its
        neighbourhood votes for; summed over positive points, over negative points, and for the box centre,
        each clipped at 1 (see _sum_clip)."""
        g = self.g128
        fg = torch.sigmoid(dense[:, 0])                            # B,L,L
        vy = g.view(1, L, 1) + VOTE_UNIT * dense[:, 1]              # votes in model px
        vx = g.view(1, 1, L) + VOTE_UNIT * dense[:, 2]
        x = coords[:, :, 0]
        y = coords[:, :, 1]
        # the Gaussian around a point is separable, so each weighted sum over the grid is two small matmuls
        # instead of a B,N,L,L product (the comparison of votes below does need one per point)
        gy = torch.exp((y.unsqueeze(2) - g).pow(2) * (-0.5 / (SIG_GATHER * SIG_GATHER)))   # B,N,L
        gx = torch.exp((x.unsqueeze(2) - g).pow(2) * (-0.5 / (SIG_GATHER * SIG_GATHER)))
        p = fg + 0.05

        def wsum(f):                                                # B,L,L -> B,N
            return (torch.matmul(gy, f) * gx).sum(dim=2)

        ws = wsum(p) + 1e-6
        cy = wsum(p * vy) / ws
        cx = wsum(p * vx) / ws
        is2 = (labels == 2.0).float()
        is3 = (labels == 3.0).float()
        has_box = torch.amax(is2, dim=1, keepdim=True)             # B,1
        by = 0.5 * torch.sum((is2 + is3) * y, dim=1, keepdim=True)   # box centre
        bx = 0.5 * torch.sum((is2 + is3) * x, dim=1, keepdim=True)
        cy = torch.cat([cy, by], 1)                                 # B,N+1
        cx = torch.cat([cx, bx], 1)
        ddy = vy.unsqueeze(1) - cy.view(cy.shape[0], -1, 1, 1)
        ddx = vx.unsqueeze(1) - cx.view(cx.shape[0], -1, 1, 1)
        dv = ddy * ddy + ddx * ddx
        same = torch.exp(dv * (-0.5 / (TAU_SAME * TAU_SAME)))       # B,N+1,L,L
        pos = torch.cat([(labels == 1.0).float(), torch.zeros_like(has_box)], 1).unsqueeze(2).unsqueeze(3)
        neg = torch.cat([(labels == 0.0).float(), torch.zeros_like(has_box)], 1).unsqueeze(2).unsqueeze(3)
        boxw = torch.cat([torch.zeros_like(labels), has_box], 1).unsqueeze(2).unsqueeze(3)

        # pos/neg/box weights [B,3,N+1] @ same [B,N+1,L*L]: a sum over points clipped at 1 (see _sum_clip)
        w = torch.cat([pos, neg, boxw], 2).squeeze(3).transpose(1, 2)
        most = torch.clamp(torch.matmul(w, same.flatten(2)), max=1.0).view(-1, 3, L, L)
        fg1 = fg.unsqueeze(1)
        # votes off nuclei point anywhere: the maps keep only foreground pixels
        return [most * fg1, fg1]

    def forward(self, emb, coords, labels, mask_input, has_mask):
        sem = emb[:, :C_SEM]
        det = depth_to_space(emb[:, C_SEM:C_SEM + 4 * C_DET], C_DET, E)
        dense = depth_to_space(emb[:, C_SEM + 4 * C_DET:], C_DENSE, E, 4)
        h = has_mask.reshape(-1, 1, 1, 1)
        m128 = torch.sigmoid(mask_input) * h
        m32 = F.avg_pool2d(m128, 4)
        m64 = space_to_depth(m128, 1, 2 * E)
        same128 = torch.cat(self._same(dense, coords, labels), 1)   # B,4,L,L
        same64 = F.avg_pool2d(same128, 2)
        same32 = F.avg_pool2d(same128, 4)
        maps32 = self._raster(coords, labels, self.g32, self.SIG32, 2.0)
        maps64 = self._raster(coords, labels, self.g64, self.SIG64, 1.0)
        h32 = torch.ones_like(m32) * h
        x = self.inp(_one_matmul(torch.cat([sem] + maps32 + [m32, h32, same32], 1)))
        x = self.blocks(x)
        w = maps32[0] + maps32[-1] + 1e-3                          # pos (small sigma) + box
        pooled = torch.cat([x.mean(dim=(2, 3)), (x * w).sum(dim=(2, 3)) / w.sum(dim=(2, 3))], 1)
        iou = torch.sigmoid(self.iou(pooled))
        u = self.up1(x)
        u = self.blk1(self.fuse1(_one_matmul(torch.cat([u, det] + maps64 + [m64, same64], 1))))
        logits = depth_to_space(self.out(u), M, 2 * E)
        maps128 = self._raster(coords, labels, self.g128, self.SIG128, 0.5, box=False) if self.click_maps128 else []
        logits = logits + self.final(_one_matmul(torch.cat([same128, m128] + maps128, 1)))
        return iou, logits


def has_box(labels):
    """Whether prompts [B,N] include a box (labels 2/3): those go to the box decoder, as in the engine. A batch
    holds one kind of prompt."""
    return bool((labels == 2.0).any())   # torch or numpy


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder(click_maps128=True)   # prompts of points only (decoder_low_res.onnx)
        self.box_decoder = Decoder()                  # prompts with a box (decoder_box_low_res.onnx)

    def decoder_for(self, labels):
        return self.box_decoder if has_box(labels) else self.decoder
