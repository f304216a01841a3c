#!/usr/bin/env python3
"""Writes src/train/testdata/ssim-skimage.json: SSIM and PSNR of a few image pairs as the reference's validation
computes them (skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, win_size=11,
use_sample_covariance=False, data_range=1, channel_axis=0)). Needs Debian's python3-skimage (0.19):
    /usr/bin/python3 scripts/goldens/ssim-skimage.py
"""
import json, os
import numpy as np
from skimage.metrics import structural_similarity

rng = np.random.default_rng(0)
cases = []
for (h, w) in [(24, 24), (32, 20)]:
    a = rng.random((3, h, w)).astype(np.float32)
    b = np.clip(a * 0.6 + rng.random((3, h, w)).astype(np.float32) * 0.4 + 0.05, 0, 1).astype(np.float32)
    s = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, win_size=11, use_sample_covariance=False,
                              data_range=1.0, channel_axis=0)
    cases.append({"h": h, "w": w, "a": a.flatten().tolist(), "b": b.flatten().tolist(), "ssim": float(s)})
out = os.path.join(os.path.dirname(__file__), "..", "..", "src", "train", "testdata", "ssim-skimage.json")
with open(out, "w") as f:
    json.dump({"skimage": __import__("skimage").__version__, "cases": cases}, f)
