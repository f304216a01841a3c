import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { psnr, ssim } from './metrics.ts';

test('ssim equals scikit-image structural_similarity as the reference validation calls it (golden, skimage 0.19)', () => {
  const g = JSON.parse(readFileSync(new URL('./testdata/ssim-skimage.json', import.meta.url), 'utf8')) as {
    cases: Array<{ h: number; w: number; a: number[]; b: number[]; ssim: number }>;
  };
  for (const c of g.cases) {
    const got = ssim(Float32Array.from(c.a), Float32Array.from(c.b), 3, c.h, c.w);
    assert.ok(Math.abs(got - c.ssim) < 1e-6, `${c.h}×${c.w}: ${got} vs skimage ${c.ssim}`);
  }
  const a = Float32Array.from(g.cases[0]!.a);
  assert.ok(Math.abs(ssim(a, a, 3, 24, 24) - 1) < 1e-12);
});

test('psnr clips both images to [0, 1] first', () => {
  assert.equal(psnr(Float32Array.of(1.5, 0), Float32Array.of(1, 0)), Infinity);
  assert.ok(Math.abs(psnr(Float32Array.of(0.5, 0.5), Float32Array.of(0.6, 0.4)) - 20) < 1e-5);
});
