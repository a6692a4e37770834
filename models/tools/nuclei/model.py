"""A compact promptable segmenter with SAM's two-part ONNX interface.

encoder: image [B,3,256,256] (SAM-normalised, zero-padded) -> image_embeddings [B,128,32,32]
  channels 0..63: stride-8 context features (a small U-Net-ish pyramid down to stride 16);
  channels 64..127: stride-4 detail features (16 channels) packed space-to-depth (2x2) into stride 8.
decoder: prompts are rasterised in-graph (Gaussians of positive/negative points, a soft box map) at the
  embedding grid (32x32) and at the low-res mask grid (128x128), fused with the embedding and the previous
  mask, three depthwise-separable residual blocks (dilations 1, 2, 4), a learned x2 upsampling fused with the
  unpacked stride-4 detail and prompt maps at 64x64, then 2x2 sub-pixel outputs (depth-to-space) -> 4 mask
  logits at 128x128 (index 0 single-mask, 1..3 multimask) and an IoU head on pooled features.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

S = 256          # input_size
E = 32           # embedding side
L = 128          # low-res mask side (= 4 E)
C_SEM = 64
C_DET = 16       # detail channels at stride 4, packed to 4*16 = 64 at stride 8
C = C_SEM + 4 * C_DET
M = 4


def cbr(cin, cout, stride=1, dil=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dil, dilation=dil, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def space_to_depth2(x, c, h):
    # [B,c,2h,2h] -> [B,4c,h,h] with channel order (c, dy, dx); explicit reshape/transpose
    b = x.shape[0]
    x = x.reshape(b, c, h, 2, h, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h, h)


def depth_to_space2(x, c, h):
    # inverse of space_to_depth2: [B,4c,h,h] -> [B,c,2h,2h]
    b = x.shape[0]
    x = x.reshape(b, c, 2, 2, h, h).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c, 2 * h, 2 * h)


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
        self.det = nn.Conv2d(32, C_DET, 1)

    def forward(self, x):
        f4 = self.l4(self.stem(x))
        f8 = self.l8(f4)
        f16 = self.l16(f8)
        s = self.fuse(F.relu(f8 + self.up(f16)))
        sem = self.sem(s)
        det = space_to_depth2(self.det(f4), C_DET, E)
        return torch.cat([sem, det], 1)


class DWBlock(nn.Module):
    def __init__(self, c, dil=1):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, 1, padding=dil, dilation=dil, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bn2(self.pw(F.relu(self.bn1(self.dw(x))))))


def _grid(r):
    # centres of an r-cell grid over the S-pixel model input, in model-input pixels
    return (torch.arange(r, dtype=torch.float32) + 0.5) * (S / r)


class Decoder(nn.Module):
    SIG32 = (6.0, 16.0)
    SIG64 = (2.5,)

    def __init__(self, ch=48):
        super().__init__()
        self.register_buffer("g32", _grid(E), persistent=False)
        self.register_buffer("g64", _grid(2 * E), persistent=False)
        n32 = 2 * len(self.SIG32) + 3     # pos/neg per sigma, box, mask, has_mask
        n64 = 2 * len(self.SIG64) + 1 + 4  # pos/neg, box, mask (128 -> 64 space-to-depth)
        self.inp = nn.Sequential(nn.Conv2d(C_SEM + n32, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU())
        self.blocks = nn.Sequential(DWBlock(ch, 1), DWBlock(ch, 2), DWBlock(ch, 4))
        self.iou = nn.Sequential(nn.Linear(2 * ch, 32), nn.ReLU(), nn.Linear(32, M))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(ch, 24, 2, 2, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.fuse1 = nn.Sequential(nn.Conv2d(24 + C_DET + n64, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.blk1 = DWBlock(24, 1)
        self.out = nn.Conv2d(24, 4 * M, 1)   # 2x2 sub-pixels per mask -> depth-to-space to 128

    @staticmethod
    def _raster(coords, labels, g, sigmas, tau):
        x = coords[:, :, 0]
        y = coords[:, :, 1]
        dx2 = (x.unsqueeze(2) - g) ** 2                           # B,N,R
        dy2 = (y.unsqueeze(2) - g) ** 2
        d2 = dy2.unsqueeze(3) + dx2.unsqueeze(2)                  # B,N,R,R
        pos = (labels == 1.0).float().unsqueeze(2).unsqueeze(3)
        neg = (labels == 0.0).float().unsqueeze(2).unsqueeze(3)
        maps = []
        for s in sigmas:
            e = torch.exp(d2 * (-0.5 / (s * s)))
            maps.append(torch.amax(e * pos, dim=1, keepdim=True))
            maps.append(torch.amax(e * neg, dim=1, keepdim=True))
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

    def forward(self, emb, coords, labels, mask_input, has_mask):
        sem = emb[:, :C_SEM]
        det = depth_to_space2(emb[:, C_SEM:], C_DET, E)
        h = has_mask.reshape(-1, 1, 1, 1)
        m128 = torch.sigmoid(mask_input) * h
        m32 = F.avg_pool2d(m128, 4)
        m64 = space_to_depth2(m128, 1, 2 * E)
        maps32 = self._raster(coords, labels, self.g32, self.SIG32, 2.0)
        maps64 = self._raster(coords, labels, self.g64, self.SIG64, 1.0)
        h32 = torch.ones_like(m32) * h
        x = self.inp(torch.cat([sem] + maps32 + [m32, h32], 1))
        x = self.blocks(x)
        w = maps32[0] + maps32[-1] + 1e-3                          # pos (small sigma) + box
        pooled = torch.cat([x.mean(dim=(2, 3)), (x * w).sum(dim=(2, 3)) / w.sum(dim=(2, 3))], 1)
        iou = torch.sigmoid(self.iou(pooled))
        u = self.up1(x)
        u = self.blk1(self.fuse1(torch.cat([u, det] + maps64 + [m64], 1)))
        logits = depth_to_space2(self.out(u), M, 2 * E)
        return iou, logits


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()
        # training only (not exported): dense nucleus foreground + boundary logits at 128x128, read linearly
        # from the embedding, so that every pixel of every tile supervises the encoder
        self.aux = nn.Conv2d(C, 2 * 16, 1)

    def aux_logits(self, emb):
        b = emb.shape[0]
        x = self.aux(emb).reshape(b, 2, 4, 4, E, E).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, 2, 4 * E, 4 * E)
