#!/usr/bin/env python3
"""PyTorch baseline for `npm run bench -- train-full`: a 2-layer slice of the full-size GS-LRM transformer (d 1024,
16 heads) at a given token count, trained as the reference does (torch.utils.checkpoint around every layer) plus a
checkpoint around every attention query chunk, without which the recomputed layer would keep all chunks' softmax
outputs (16 x L x L floats) until its backward. fp32 on the CPU with Debian's python3-torch.

    /usr/bin/python3 bench/baselines/gslrm_slice.py --threads 2 --tokens 4098 --layers 2

Prints one JSON line: {"fwd_s", "fwdbwd_s" (one measured run after a warm-up), "peak_rss_mib", "torch", ...}.
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
from gslrm import layer as gslrm_layer  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="None of the inputs have requires_grad")


def chunk_attention(q, k, v):
    return torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2), dim=-1) @ v


def checkpointed_attention(q, k, v, chunk):
    """Attention with a checkpoint around every query chunk (its softmax is recomputed in the backward)."""
    return torch.cat([checkpoint(chunk_attention, q[:, :, i:i + chunk], k, v) for i in range(0, q.shape[2], chunk)], dim=2)


def layer(h, w, p, d, d_head, chunk):
    return gslrm_layer(h, w, p, d, d_head, chunk, checkpointed_attention)


def main():
    ap = argparse.ArgumentParser()
    for k, v in [("threads", 2), ("tokens", 4098), ("layers", 2), ("d", 1024), ("d-head", 64), ("chunk", 1024)]:
        ap.add_argument(f"--{k}", type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    w = {}
    for l in range(a.layers):
        p = f"transformer_layers.{l}."
        for name, shape in [("norm1.weight", (a.d,)), ("attn.to_qkv.weight", (3 * a.d, a.d)), ("attn.fc.weight", (a.d, a.d)),
                            ("norm2.weight", (a.d,)), ("mlp.mlp.0.weight", (4 * a.d, a.d)), ("mlp.mlp.2.weight", (a.d, 4 * a.d))]:
            t = torch.randn(*shape, generator=gen) * (0.02 if len(shape) > 1 else 1.0) + (0 if len(shape) > 1 else 1.0)
            w[p + name] = t.requires_grad_(True)
    x = torch.randn(1, a.tokens, a.d, generator=gen).requires_grad_(True)  # the slice returns dx, as ours does
    c = torch.randn(1, a.tokens, a.d, generator=gen)

    def fwd(with_grad):
        h = x
        for l in range(a.layers):
            p = f"transformer_layers.{l}."
            h = checkpoint(layer, h, w, p, a.d, a.d_head, a.chunk) if with_grad else layer(h, w, p, a.d, a.d_head, a.chunk)
        return h

    res = {}
    for r in range(2):
        with torch.no_grad():
            t0 = time.perf_counter()
            fwd(False)
            res["fwd_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        (fwd(True) * c).sum().backward()
        res["fwdbwd_s"] = time.perf_counter() - t0
        for t in w.values():
            t.grad = None
    res.update({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch": torch.__version__,
                "threads": torch.get_num_threads()})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
