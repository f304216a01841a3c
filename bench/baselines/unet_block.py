#!/usr/bin/env python3
"""Baseline for `npm run bench -- train-unet --only block`: one level of FaceLift's multi-view UNet — a diffusers
ResnetBlock2D (GroupNorm 32 / SiLU / 3x3 conv, time-embedding projection, residual) followed by a
TransformerMV2DModel with one BasicMVTransformerBlock (GroupNorm eps 1e-6, proj_in, LayerNorm + multi-view
self-attention whose keys/values are [front view || own view] of each 6-view group, LayerNorm + cross-attention to
77 prompt tokens, LayerNorm + GEGLU feed-forward, proj_out, residual) — hand-written in Debian's PyTorch 1.13
(spec mvdiffusion.md §2-3), random weights, fp32. Prints JSON: forward and forward+backward seconds (best of
`--repeat` after a warm-up), with plain autograd or with torch.utils.checkpoint around the block, and peak RSS.
    /usr/bin/python3 bench/baselines/unet_block.py --channels 640 --heads 10 --size 32 --threads 2
"""
import argparse, json, resource, time
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

p = argparse.ArgumentParser()
p.add_argument('--channels', type=int, default=640)
p.add_argument('--heads', type=int, default=10)
p.add_argument('--size', type=int, default=32)
p.add_argument('--views', type=int, default=6)
p.add_argument('--ctx', type=int, default=1024)
p.add_argument('--temb', type=int, default=1280)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--repeat', type=int, default=2)
p.add_argument('--checkpoint', action='store_true')
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
C, H, V = a.channels, a.heads, a.views


class Resnet(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, C, eps=1e-5)
        self.conv1 = nn.Conv2d(C, C, 3, padding=1)
        self.time_emb_proj = nn.Linear(a.temb, C)
        self.norm2 = nn.GroupNorm(32, C, eps=1e-5)
        self.conv2 = nn.Conv2d(C, C, 3, padding=1)

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h


class Attention(nn.Module):
    def __init__(self, ctx_dim, mv):
        super().__init__()
        self.q = nn.Linear(C, C, bias=False)
        self.k = nn.Linear(ctx_dim, C, bias=False)
        self.v = nn.Linear(ctx_dim, C, bias=False)
        self.o = nn.Linear(C, C)
        self.mv = mv

    def forward(self, x, ctx):
        q, k, v = self.q(x), self.k(ctx), self.v(ctx)
        if self.mv:  # keys/values of [front view || own view] per group of V views
            n, t, c = k.shape
            g = k.view(n // V, V, t, c)
            k = torch.cat([g[:, :1].expand(-1, V, -1, -1), g], 2).reshape(n, 2 * t, c)
            g = v.view(n // V, V, t, c)
            v = torch.cat([g[:, :1].expand(-1, V, -1, -1), g], 2).reshape(n, 2 * t, c)
        split = lambda z: z.view(z.shape[0], z.shape[1], H, C // H).transpose(1, 2)
        s = torch.softmax(split(q) @ split(k).transpose(-1, -2) / (C // H) ** 0.5, -1)
        o = (s @ split(v)).transpose(1, 2).reshape(x.shape)
        return self.o(o)


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.GroupNorm(32, C, eps=1e-6)
        self.proj_in = nn.Linear(C, C)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(C), nn.LayerNorm(C), nn.LayerNorm(C)
        self.attn1 = Attention(C, True)
        self.attn2 = Attention(a.ctx, False)
        self.ff_in = nn.Linear(C, 8 * C)
        self.ff_out = nn.Linear(4 * C, C)
        self.proj_out = nn.Linear(C, C)

    def forward(self, x, ctx):
        n, c, h, w = x.shape
        t = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(n, h * w, c))
        y = self.norm1(t)
        t = t + self.attn1(y, y)
        t = t + self.attn2(self.norm2(t), ctx)
        val, gate = self.ff_in(self.norm3(t)).chunk(2, -1)
        t = t + self.ff_out(val * F.gelu(gate))
        return x + self.proj_out(t).view(n, h, w, c).permute(0, 3, 1, 2)


res, tr = Resnet(), Transformer()
block = lambda x, temb, ctx: tr(res(x, temb), ctx)
x = torch.randn(V, C, a.size, a.size, requires_grad=True)
temb = torch.randn(V, a.temb)
ctx = torch.randn(V, 77, a.ctx)
cot = torch.randn(V, C, a.size, a.size)


def fwd():
    with torch.no_grad():
        block(x, temb, ctx)


def fwdbwd():
    y = checkpoint(block, x, temb, ctx, use_reentrant=False) if a.checkpoint else block(x, temb, ctx)
    (y * cot).sum().backward()


def best(f):
    f()
    ts = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


out = {'fwd_s': best(fwd), 'fwdbwd_s': best(fwdbwd), 'torch': torch.__version__,
       'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(out))
