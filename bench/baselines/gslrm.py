#!/usr/bin/env python3
"""PyTorch baseline for `npm run bench -- lrm`: the GS-LRM network of spec/gslrm.md §3 (the same graph as
src/lrm), written with plain torch ops; attention in query chunks so the 24,578² score matrix never exists
at once. Random weights N(0, 0.02), LayerNorm weights 1. Runs with Debian's python3-torch (1.13):
`apt-get install python3-torch`, then `/usr/bin/python3`.

    /usr/bin/python3 bench/baselines/gslrm.py --threads 2 [--views 6 --size 512 --layers 24 --d 1024 --d-head 64]
    /usr/bin/python3 bench/baselines/gslrm.py --golden ../shared/golden/gslrm-tiny   # checks this network against the golden run

Prints one JSON line: {"wall_s", "peak_rss_mib", "tokens", "params", "torch", "threads", ...}.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F


def make_weights(d, d_head, n_layer, patch, in_ch, n_global, gen):
    def lin(o, i):
        return torch.randn(o, i, generator=gen) * 0.02
    w = {
        "gaussian_position_embeddings": torch.randn(n_global, d, generator=gen) * 0.02,
        "patch_embedder.1.weight": lin(d, patch * patch * in_ch),
        "input_layer_norm.weight": torch.ones(d),
    }
    for l in range(n_layer):
        p = f"transformer_layers.{l}."
        w[p + "norm1.weight"] = torch.ones(d)
        w[p + "attn.to_qkv.weight"] = lin(3 * d, d)
        w[p + "attn.fc.weight"] = lin(d, d)
        w[p + "norm2.weight"] = torch.ones(d)
        w[p + "mlp.mlp.0.weight"] = lin(4 * d, d)
        w[p + "mlp.mlp.2.weight"] = lin(d, 4 * d)
    w["gaussian_upsampler.layernorm.weight"] = torch.ones(d)
    w["gaussian_upsampler.linear.weight"] = lin(14, d)
    w["pixel_gaussian_decoder.0.weight"] = torch.ones(d)
    w["pixel_gaussian_decoder.1.weight"] = lin(patch * patch * 14, d)
    return w


def ln(x, g):
    return F.layer_norm(x, (x.shape[-1],), g, None, 1e-5)


def attention(q, k, v, chunk):
    """Full softmax attention over all tokens, computed in query chunks so that only a [heads, chunk, L] score
    block exists at a time (torch 1.13, Debian's version, has no fused scaled_dot_product_attention)."""
    scale = q.shape[-1] ** -0.5
    kt = k.transpose(-1, -2)
    out = torch.empty_like(q)
    for s in range(0, q.shape[2], chunk):
        scores = torch.matmul(q[:, :, s:s + chunk], kt).mul_(scale)
        out[:, :, s:s + chunk] = torch.matmul(torch.softmax(scores, dim=-1), v)
    return out


def layer(h, w, p, d, d_head, chunk, attn=None):
    """One pre-LN transformer block (spec §3.4); p is the weight-name prefix; attn(q, k, v, chunk) defaults to
    `attention`."""
    B, L, _ = h.shape
    nh = d // d_head
    y = ln(h, w[p + "norm1.weight"])
    q, k, v = (y @ w[p + "attn.to_qkv.weight"].t()).split(d, dim=2)
    q, k, v = (t.reshape(B, L, nh, d_head).transpose(1, 2) for t in (q, k, v))
    a = (attn or attention)(q, k, v, chunk).transpose(1, 2).reshape(B, L, d)
    h = h + a @ w[p + "attn.fc.weight"].t()
    y = ln(h, w[p + "norm2.weight"])
    return h + F.gelu(y @ w[p + "mlp.mlp.0.weight"].t()) @ w[p + "mlp.mlp.2.weight"].t()


def forward(w, posed, d, d_head, n_layer, patch, n_global, record=None, chunk=1024, layer_times=None):
    """posed [B,V,9,H,W] -> raw Gaussians [B, n_global + V*H*W, 14] (spec §3)."""
    B, V, C, H, W = posed.shape
    hp, wp = H // patch, W // patch
    x = posed.reshape(B, V, C, hp, patch, wp, patch).permute(0, 1, 3, 5, 4, 6, 2).reshape(B, V * hp * wp, patch * patch * C)
    tok = x @ w["patch_embedder.1.weight"].t()
    seq = torch.cat([w["gaussian_position_embeddings"].expand(B, -1, -1), tok], dim=1)
    if record is not None:
        record["patch_tokens"], record["tokens_in"] = tok, seq
    h = ln(seq, w["input_layer_norm.weight"])
    if record is not None:
        record["tokens_ln"] = h
    for l in range(n_layer):
        t0 = time.perf_counter()
        h = layer(h, w, f"transformer_layers.{l}.", d, d_head, chunk)
        if record is not None:
            record[f"layer_out.{l}"] = h
        if layer_times is not None:
            layer_times.append(time.perf_counter() - t0)
    g = ln(h[:, :n_global], w["gaussian_upsampler.layernorm.weight"]) @ w["gaussian_upsampler.linear.weight"].t()
    px = ln(h[:, n_global:], w["pixel_gaussian_decoder.0.weight"]) @ w["pixel_gaussian_decoder.1.weight"].t()
    px = px.reshape(B, -1, 14)
    return torch.cat([g, px], dim=1)


def rays_posed(image, c2w, K):
    """Spec §2: [rgb*2-1 | d | o + (-o.d) d] for image [B,V,3,H,W], c2w [B,V,4,4], K [B,V,4]."""
    B, V, _, H, W = image.shape
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    K = K.double()[..., None, None]
    dc = torch.stack([(xs + 0.5 - K[:, :, 2]) / K[:, :, 0], (ys + 0.5 - K[:, :, 3]) / K[:, :, 1], torch.ones_like(xs).expand(B, V, H, W)], dim=2)
    dc = dc / dc.norm(dim=2, keepdim=True)
    R = c2w.double()[:, :, :3, :3]
    d = torch.einsum("bvij,bvjhw->bvihw", R, dc)
    d = d / d.norm(dim=2, keepdim=True)
    o = c2w.double()[:, :, :3, 3][..., None, None]
    t = -(o * d).sum(dim=2, keepdim=True)
    return torch.cat([image.double() * 2 - 1, d, o + t * d], dim=2).float()


def read_safetensors(path):
    import struct
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + n])
    out = {}
    dt = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64, "I32": torch.int32, "U8": torch.uint8}
    for k, h in hdr.items():
        if k == "__metadata__":
            continue
        b, e = h["data_offsets"]
        out[k] = torch.frombuffer(bytearray(buf[8 + n + b:8 + n + e]), dtype=dt[h["dtype"]]).reshape(h["shape"])
    return out


def run_golden(folder):
    ckpt = [f for f in os.listdir(folder) if f.startswith("ckpt_") and f.endswith(".pt")][0]
    w = torch.load(os.path.join(folder, ckpt), map_location="cpu")["model"]
    inp = read_safetensors(os.path.join(folder, "inputs.safetensors"))
    ref = read_safetensors(os.path.join(folder, "intermediates.safetensors"))
    ref.update(read_safetensors(os.path.join(folder, "gaussians.safetensors")))
    posed = rays_posed(inp["image"], inp["c2w"], inp["fxfycxcy"])
    rec = {}
    d = w["input_layer_norm.weight"].shape[0]
    n_layer = len({k.split(".")[1] for k in w if k.startswith("transformer_layers.")})
    raw = forward(w, posed, d, 16, n_layer, 8, 2, rec)
    rec["posed_input"], rec["gaussians_raw"] = posed, raw
    errs = {k: float((rec[k] - ref[k]).abs().max()) for k in rec if k in ref}
    print(json.dumps({"golden_max_abs_err": errs}))
    return max(errs.values()) < 1e-4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--views", type=int, default=6)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--d-head", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--golden", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.golden:
        sys.exit(0 if run_golden(a.golden) else 1)
    gen = torch.Generator().manual_seed(0)
    w = make_weights(a.d, a.d_head, a.layers, 8, 9, 2, gen)
    posed = torch.rand(1, a.views, 9, a.size, a.size, generator=gen) * 2 - 1
    layer_times = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        raw = forward(w, posed, a.d, a.d_head, a.layers, 8, 2, chunk=a.chunk, layer_times=layer_times)
        wall = time.perf_counter() - t0
    print(json.dumps({
        "wall_s": wall,
        "layer_median_s": sorted(layer_times)[len(layer_times) // 2],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tokens": 2 + a.views * (a.size // 8) ** 2,
        "params": sum(t.numel() for t in w.values()),
        "finite": bool(torch.isfinite(raw).all()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "chunk": a.chunk,
    }))


if __name__ == "__main__":
    main()
