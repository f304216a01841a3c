#!/usr/bin/env python3
"""Writes src/train/testdata/adam8bit.json: bitsandbytes' dynamic quantisation maps (create_dynamic_map, signed and
unsigned, computed by its formula in torch float32 as bitsandbytes does) and a float64 reference run of its
blockwise 8-bit AdamW (block 256; states below 4096 elements stay fp32; quantize = absmax per block, clamp to
[-1, 1], bucketize against the midpoints of the sorted map; dequantize = map[q]·absmax; the update as in
bitsandbytes/backends/cpu/ops.py) on a toy problem. Needs Debian's python3-torch:
    /usr/bin/python3 scripts/goldens/adam8bit.py
"""
import json, math, os
import torch


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    for _ in range(256 - len(data)):
        data.append(0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def quantize(a, code, bs=256):
    n = a.numel(); blocks = (n + bs - 1) // bs
    q = torch.empty(n, dtype=torch.uint8); absmax = torch.empty(blocks, dtype=torch.float64)
    bounds = (code[:-1] + code[1:]) / 2
    for b in range(blocks):
        x = a[b * bs:(b + 1) * bs]
        am = x.abs().max().clamp(min=1e-38)
        absmax[b] = am
        q[b * bs:(b + 1) * bs] = torch.bucketize(torch.clamp(x / am, -1, 1), bounds).to(torch.uint8)
    return q, absmax


def dequantize(q, absmax, code, bs=256):
    out = code[q.long()].double()
    for b in range(absmax.numel()):
        out[b * bs:(b + 1) * bs] *= absmax[b]
    return out


code1, code2 = create_dynamic_map(True), create_dynamic_map(False)
c1, c2 = code1.double(), code2.double()
lr, b1, b2, eps, wd = 1e-2, 0.9, 0.95, 1e-8, 0.05
g = torch.Generator().manual_seed(0)
params = {'big': (torch.randn(5000, generator=g, dtype=torch.float64) * 0.1), 'small': torch.randn(300, generator=g, dtype=torch.float64) * 0.1}
p0 = {k: v.clone() for k, v in params.items()}
target = {k: torch.randn(v.numel(), generator=g, dtype=torch.float64) for k, v in params.items()}
st = {k: {'m': torch.zeros_like(v), 'v': torch.zeros_like(v)} for k, v in params.items()}
q = {}
grads = []
for step in range(1, 7):
    for k, p in params.items():
        grad = (p - target[k]) * (1 + 0.5 * torch.sin(torch.arange(p.numel(), dtype=torch.float64)))
        grads.append({'name': k, 'step': step})
        eight = p.numel() >= 4096
        if eight and step > 1:
            m = dequantize(q[k][0], q[k][1], c1); v = dequantize(q[k][2], q[k][3], c2)
        else:
            m, v = st[k]['m'], st[k]['v']
        m = m * b1 + grad * (1 - b1)
        v = v * b2 + grad * grad * (1 - b2)
        corr1 = 1 - b1 ** step; corr2 = math.sqrt(1 - b2 ** step)
        denom = v.sqrt() / corr2 + eps
        p.mul_(1 - lr * wd).add_(-lr / corr1 * m / denom)
        if eight:
            q[k] = (*quantize(m, c1), *quantize(v, c2))
        else:
            st[k]['m'], st[k]['v'] = m, v
out = {
    'code_signed': code1.tolist(), 'code_unsigned': code2.tolist(),
    'hyper': {'lr': lr, 'b1': b1, 'b2': b2, 'eps': eps, 'wd': wd, 'steps': 6},
    'p0': {k: v.tolist() for k, v in p0.items()}, 'target': {k: v.tolist() for k, v in target.items()},
    'p': {k: v.tolist() for k, v in params.items()},
    'big_state': {'q1': q['big'][0].tolist(), 'absmax1': q['big'][1].tolist(), 'q2': q['big'][2].tolist(), 'absmax2': q['big'][3].tolist()},
}
path = os.path.join(os.path.dirname(__file__), '..', '..', 'src', 'train', 'testdata', 'adam8bit.json')
with open(path, 'w') as f:
    json.dump(out, f)
