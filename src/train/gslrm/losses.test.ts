import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTorchPython } from '../../io/testing/torch-python.ts';
import { backgroundLoss, l2Loss, maskedL2Loss, pixelAlignLoss, pointsDistLoss } from './losses.ts';

const S = 4,
  V = 2;
const rnd = (seed: number) => {
  let s = seed;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
};

test("image losses: values and gradients equal the reference formulas in torch (F.mse_loss, the fork's masked L2 and background loss)", () => {
  const r = rnd(3);
  const render = Float32Array.from({ length: V * 3 * S * S }, () => r() * 1.2 - 0.1);
  const target = Float32Array.from({ length: V * 3 * S * S }, r);
  const mask = Float32Array.from({ length: V * S * S }, r);
  const d = {
    l2: new Float32Array(render.length),
    masked: new Float32Array(render.length),
    bg: new Float32Array(render.length),
  };
  const got = {
    l2: l2Loss(render, target, d.l2, 1),
    masked: maskedL2Loss(render, target, mask, S, d.masked, 1),
    bg: backgroundLoss(render, [1, 0.5, 0], mask, S, d.bg, 1),
  };
  const out = JSON.parse(
    runTorchPython(
      `
import sys, json, torch, torch.nn.functional as F
a = json.loads(sys.argv[1])
r = torch.tensor(a['render']).reshape(${V}, 3, ${S}, ${S}).requires_grad_()
t = torch.tensor(a['target']).reshape(${V}, 3, ${S}, ${S})
m = torch.tensor(a['mask']).reshape(${V}, 1, ${S}, ${S})
res = {}
l2 = F.mse_loss(r, t); g, = torch.autograd.grad(l2, r); res['l2'] = [l2.item(), g.flatten().tolist()]
mb = (m > 0.5).float(); ml = ((r - t) ** 2 * mb).sum() / (mb.sum().clamp(min=1.0) * 3)
g, = torch.autograd.grad(ml, r); res['masked'] = [ml.item(), g.flatten().tolist()]
bb = (m < 0.5).float(); bl = ((r - torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)) ** 2 * bb).sum() / (bb.sum().clamp(min=1.0) * 3)
g, = torch.autograd.grad(bl, r); res['bg'] = [bl.item(), g.flatten().tolist()]
print(json.dumps(res))`,
      [JSON.stringify({ render: [...render], target: [...target], mask: [...mask] })],
    ),
  ) as Record<'l2' | 'masked' | 'bg', [number, number[]]>;
  for (const k of ['l2', 'masked', 'bg'] as const) {
    assert.ok(Math.abs(got[k] - out[k][0]) < 1e-6, `${k}: ${got[k]} vs torch ${out[k][0]}`);
    out[k][1].forEach((g, i) => assert.ok(Math.abs(d[k][i]! - g) < 1e-6, `${k} grad[${i}]: ${d[k][i]} vs ${g}`));
  }
});

test('points-distance loss: value and xyz gradient equal the reference formula in torch', () => {
  const r = rnd(9);
  const nGlobal = 2,
    H = 3,
    W = 4,
    n = V * H * W;
  const origins = Float64Array.of(0, -2.7, 0.3, 2.5, 0.4, 0.9);
  const means = Float32Array.from({ length: 3 * (nGlobal + n) }, () => r() * 2 - 1);
  const viewOf = Uint32Array.from({ length: n }, (_, j) => Math.floor(j / (H * W)));
  const d = new Float32Array(means.length);
  const got = pointsDistLoss(means, nGlobal, viewOf, origins, V, d, 1);
  const out = JSON.parse(
    runTorchPython(
      `
import sys, json, torch
a = json.loads(sys.argv[1])
xyz = torch.tensor(a['means'][3 * ${nGlobal}:], dtype=torch.float32).reshape(${V}, ${H}, ${W}, 3).permute(0, 3, 1, 2)[None].clone().requires_grad_()
o = torch.tensor(a['origins'], dtype=torch.float32).reshape(1, ${V}, 3, 1, 1)
tm = torch.norm(o, dim=2, p=2, keepdim=True)
pd = (xyz - o).norm(dim=2, p=2, keepdim=True)
pdd = pd.detach()
target = (pdd - pdd.mean(dim=(2, 3, 4), keepdim=True)) / (pdd.std(dim=(2, 3, 4), keepdim=True) + 1e-8) * 0.5 + tm
loss = torch.mean((pd - target) ** 2)
g, = torch.autograd.grad(loss, xyz)
print(json.dumps([loss.item(), g[0].permute(0, 2, 3, 1).flatten().tolist()]))`,
      [JSON.stringify({ means: [...means], origins: [...origins] })],
    ),
  ) as [number, number[]];
  assert.ok(Math.abs(got - out[0]) < 1e-5 * Math.max(1, out[0]), `loss ${got} vs torch ${out[0]}`);
  out[1].forEach((g, i) =>
    assert.ok(Math.abs(d[3 * nGlobal + i]! - g) < 1e-5, `grad[${i}]: ${d[3 * nGlobal + i]} vs ${g}`),
  );
  for (let i = 0; i < 3 * nGlobal; i++) assert.equal(d[i], 0, 'global Gaussians are not regularised');
});

test('pixel-align loss: value and xyz gradient equal the reference formula in torch (points off their rays, masked)', () => {
  const r = rnd(21);
  const nGlobal = 2, H = 3, W = 4, n = V * H * W;
  const origins = Float64Array.of(0, -2.7, 0.3, 2.5, 0.4, 0.9);
  const dirs = Array.from({ length: n }, () => { const d = [r() - 0.5, r() - 0.5, r() - 0.5]; const k = Math.hypot(...d); return d.map((x) => x / k); });
  const means = Float32Array.from({ length: 3 * (nGlobal + n) }, () => r() * 2 - 1);
  const mask = Float32Array.from({ length: n }, (_, j) => (j % 3 === 0 ? 0 : r()));
  const viewOf = Uint32Array.from({ length: n }, (_, j) => Math.floor(j / (H * W)));
  const d = new Float32Array(means.length);
  const got = pixelAlignLoss(means, nGlobal, viewOf, origins, (j) => dirs[j] as [number, number, number], mask, d, 1);
  const out = JSON.parse(runTorchPython(`
import sys, json, torch
a = json.loads(sys.argv[1])
xyz = torch.tensor(a['means'][3 * ${nGlobal}:], dtype=torch.float64).reshape(1, ${V}, ${H}, ${W}, 3).permute(0, 1, 4, 2, 3).clone().requires_grad_()
o = torch.tensor(a['origins'], dtype=torch.float64).reshape(1, ${V}, 3, 1, 1)
d = torch.tensor(a['dirs'], dtype=torch.float64).reshape(1, ${V}, ${H}, ${W}, 3).permute(0, 1, 4, 2, 3)
m = torch.tensor(a['mask'], dtype=torch.float64).reshape(1, ${V}, 1, ${H}, ${W})
v = xyz - o
ortho = (v - torch.sum(v.detach() * d, dim=2, keepdim=True) * d) * m
loss = torch.mean(ortho.norm(dim=2, p=2))
g, = torch.autograd.grad(loss, xyz)
print(json.dumps([loss.item(), g.permute(0, 1, 3, 4, 2).flatten().tolist()]))`, [JSON.stringify({ means: [...means], origins: [...origins], dirs: dirs.flat(), mask: [...mask] })])) as [number, number[]];
  assert.ok(Math.abs(got - out[0]) < 1e-6, `loss ${got} vs torch ${out[0]}`);
  out[1].forEach((g, i) => assert.ok(Math.abs(d[3 * nGlobal + i]! - g) < 1e-5, `grad[${i}]: ${d[3 * nGlobal + i]} vs ${g}`));
});
