import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTorchPython } from '../../io/testing/torch-python.ts';
import { SsimLoss } from './ssim-loss.ts';

/** pytorch-msssim's SSIM written out in torch (Gaussian window, grouped 'valid' convolutions, K 0.01/0.03). */
const REFERENCE = `
import sys, json, torch, torch.nn.functional as F
a = json.loads(sys.argv[1]); V, S = a['V'], a['S']
X = torch.tensor(a['pred']).reshape(V, 3, S, S).requires_grad_()
Y = torch.tensor(a['target']).reshape(V, 3, S, S)
M = torch.tensor(a['mask']).reshape(V, 1, S, S)
c = torch.arange(11, dtype=torch.float32) - 5
g = torch.exp(-(c ** 2) / (2 * 1.5 ** 2)); g = g / g.sum()
def filt(t):
    t = F.conv2d(t, g.view(1, 1, 11, 1).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(t, g.view(1, 1, 1, 11).repeat(3, 1, 1, 1), groups=3)
def ssim(x, y):
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    m1, m2 = filt(x), filt(y)
    s1 = filt(x * x) - m1 ** 2; s2 = filt(y * y) - m2 ** 2; s12 = filt(x * y) - m1 * m2
    cs = (2 * s12 + C2) / (s1 + s2 + C2)
    return (((2 * m1 * m2 + C1) / (m1 ** 2 + m2 ** 2 + C1)) * cs).flatten(2).mean(-1).mean()
out = {}
l = 1 - ssim(X, Y); gr, = torch.autograd.grad(l, X); out['plain'] = [l.item(), gr.flatten().tolist()]
bg = M < 0.5
l = 1 - ssim(torch.where(bg, torch.full_like(X, 0.5), X), torch.where(bg, torch.full_like(Y, 0.5), Y)).clamp(0, 1)
gr, = torch.autograd.grad(l, X); out['masked'] = [l.item(), gr.flatten().tolist()]
print(json.dumps(out))`;

test("SSIM loss (plain and the fork's masked variant): value and gradient equal pytorch-msssim's formula in torch", async () => {
  const V = 2,
    S = 16;
  let s = 5;
  const r = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const pred = Float32Array.from({ length: V * 3 * S * S }, r);
  const target = Float32Array.from({ length: V * 3 * S * S }, (_, i) => 0.5 * pred[i]! + 0.5 * r());
  const mask = Float32Array.from({ length: V * S * S }, (_, i) => (i % S > 4 ? 1 : 0));
  const want = JSON.parse(
    runTorchPython(REFERENCE, [JSON.stringify({ V, S, pred: [...pred], target: [...target], mask: [...mask] })]),
  ) as Record<'plain' | 'masked', [number, number[]]>;
  for (const masked of [false, true]) {
    const loss = await SsimLoss.create(V, S, masked, 1);
    const d = new Float32Array(pred.length);
    const v = await loss.lossAndGrad(pred, target, V, S, d, 1, mask);
    await loss.release();
    const [wv, wg] = want[masked ? 'masked' : 'plain'];
    assert.ok(Math.abs(v - wv) < 1e-5, `${masked ? 'masked' : 'plain'}: ${v} vs torch ${wv}`);
    const maxRef = Math.max(...wg.map(Math.abs));
    wg.forEach((g, i) => assert.ok(Math.abs(d[i]! - g) <= 1e-3 * maxRef, `grad[${i}] ${d[i]} vs ${g}`));
  }
});
