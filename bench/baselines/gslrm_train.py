#!/usr/bin/env python3
"""PyTorch baseline for `npm run bench -- train-lrm`: one GS-LRM network forward + backward (the network of
bench/baselines/gslrm.py, with torch.utils.checkpoint around every transformer layer, as the reference trains) and
one AdamW update (betas 0.9/0.95, weight decay 0.05 on matrices), fp32 on the CPU with Debian's python3-torch.

    /usr/bin/python3 bench/baselines/gslrm_train.py --threads 2 --views 4 --size 64 --layers 2 --d 128 --d-head 16

Prints one JSON line: {"fwdbwd_s" (median of --reps after one warm-up), "adamw_s", "peak_rss_mib", "torch", ...}.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
from torch.utils.checkpoint import checkpoint

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslrm import make_weights, ln, layer  # noqa: E402


def forward(w, posed, d, d_head, n_layer, chunk):
    B, V, C, H, W = posed.shape
    hp, wp = H // 8, W // 8
    x = posed.reshape(B, V, C, hp, 8, wp, 8).permute(0, 1, 3, 5, 4, 6, 2).reshape(B, V * hp * wp, 64 * C)
    tok = x @ w["patch_embedder.1.weight"].t()
    h = ln(torch.cat([w["gaussian_position_embeddings"].expand(B, -1, -1), tok], dim=1), w["input_layer_norm.weight"])
    for l in range(n_layer):
        h = checkpoint(layer, h, w, f"transformer_layers.{l}.", d, d_head, chunk)
    g = ln(h[:, :2], w["gaussian_upsampler.layernorm.weight"]) @ w["gaussian_upsampler.linear.weight"].t()
    px = ln(h[:, 2:], w["pixel_gaussian_decoder.0.weight"]) @ w["pixel_gaussian_decoder.1.weight"].t()
    return torch.cat([g, px.reshape(B, -1, 14)], dim=1)


def main():
    ap = argparse.ArgumentParser()
    for k, v in [("threads", 2), ("views", 4), ("size", 64), ("layers", 2), ("d", 128), ("d-head", 16), ("chunk", 256), ("reps", 3)]:
        ap.add_argument(f"--{k}", type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    w = make_weights(a.d, a.d_head, a.layers, 8, 9, 2, gen)
    for t in w.values():
        t.requires_grad_(True)
    posed = torch.rand(1, a.views, 9, a.size, a.size, generator=gen) * 2 - 1
    c = torch.randn(1, 2 + a.views * a.size * a.size, 14, generator=gen)
    decay = [t for t in w.values() if t.dim() >= 2]
    nodecay = [t for t in w.values() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": nodecay, "weight_decay": 0.0}], lr=1e-4, betas=(0.9, 0.95))
    times, opt_times = [], []
    for r in range(a.reps + 1):
        opt.zero_grad(set_to_none=False)
        t0 = time.perf_counter()
        loss = (forward(w, posed, a.d, a.d_head, a.layers, a.chunk) * c).sum()
        loss.backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        if r > 0:
            times.append(t1 - t0)
            opt_times.append(t2 - t1)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(json.dumps({
        "fwdbwd_s": med(times), "adamw_s": med(opt_times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": sum(t.numel() for t in w.values()), "torch": torch.__version__, "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
