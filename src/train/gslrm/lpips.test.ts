import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runTorchPython } from '../../io/testing/torch-python.ts';
import { loadLpipsWeights, LpipsLoss, LpipsMetric } from './lpips.ts';

/**
 * LPIPS(net='vgg', v0.1) written out in torch (scaling layer, torchvision VGG-16 slices with max pooling, unit
 * normalisation over channels, 1×1 lin layers, spatial mean, sum over layers), on random weights saved in the
 * legacy format the published weight files use; inputs [0, 1] mapped to [−1, 1].
 */
const REFERENCE = `
import sys, json, torch, collections, torch.nn.functional as F
d = sys.argv[1]; torch.manual_seed(0)
slices = [[(0,3,64),(2,64,64)], [(5,64,128),(7,128,128)], [(10,128,256),(12,256,256),(14,256,256)],
          [(17,256,512),(19,512,512),(21,512,512)], [(24,512,512),(26,512,512),(28,512,512)]]
vgg = collections.OrderedDict(); lin = collections.OrderedDict()
for s in slices:
    for i, ci, co in s:
        vgg[f'features.{i}.weight'] = torch.randn(co, ci, 3, 3) * (2.0 / (9 * ci)) ** 0.5
        vgg[f'features.{i}.bias'] = torch.randn(co) * 0.05
for k, s in enumerate(slices):
    lin[f'lin{k}.model.1.weight'] = torch.rand(1, s[-1][2], 1, 1) * 0.1
torch.save(vgg, d + '/vgg16.pth', _use_new_zipfile_serialization=False)
torch.save(lin, d + '/vgg.pth', _use_new_zipfile_serialization=False)
pred = torch.rand(2, 3, 32, 32, requires_grad=True); target = torch.rand(2, 3, 32, 32)
shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1); scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
def feats(x):
    h, out = (x - shift) / scale, []
    for k, s in enumerate(slices):
        if k > 0: h = F.max_pool2d(h, 2, 2)
        for i, ci, co in s: h = F.relu(F.conv2d(h, vgg[f'features.{i}.weight'], vgg[f'features.{i}.bias'], padding=1))
        out.append(h)
    return out
nt = lambda x: x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + 1e-10)
fp, ft = feats(pred * 2 - 1), feats(target * 2 - 1)
dist = sum(F.conv2d((nt(a) - nt(b)) ** 2, lin[f'lin{k}.model.1.weight']).mean([2, 3], keepdim=True) for k, (a, b) in enumerate(zip(fp, ft)))
loss = dist.mean(); loss.backward()
json.dump({'pred': pred.detach().flatten().tolist(), 'target': target.flatten().tolist(), 'dist': dist.flatten().tolist(),
           'loss': loss.item(), 'grad': pred.grad.flatten().tolist()}, open(d + '/ref.json', 'w'))`;

test('LPIPS (vgg, v0.1): distances and the loss gradient equal the reference formula in torch; weights from legacy .pth files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lpips-'));
  try {
    runTorchPython(REFERENCE, [dir]);
    const ref = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8')) as { pred: number[]; target: number[]; dist: number[]; loss: number; grad: number[] };
    const w = await loadLpipsWeights(join(dir, 'vgg16.pth'), join(dir, 'vgg.pth'));
    const pred = Float32Array.from(ref.pred), target = Float32Array.from(ref.target);
    const metric = await LpipsMetric.create(w, 2, 32, 2);
    const dist = await metric.distances(pred, target);
    await metric.release();
    ref.dist.forEach((v, i) => assert.ok(Math.abs(dist[i]! - v) <= 1e-5 * Math.max(1, v), `dist[${i}] ${dist[i]} vs ${v}`));
    const loss = await LpipsLoss.create(w, 2, 32, 2);
    const d = new Float32Array(pred.length);
    const value = await loss.lossAndGrad(pred, target, 2, 32, d, 1);
    await loss.release();
    assert.ok(Math.abs(value - ref.loss) <= 1e-5 * Math.max(1, ref.loss), `loss ${value} vs ${ref.loss}`);
    const maxRef = Math.max(...ref.grad.map(Math.abs));
    ref.grad.forEach((g, i) => assert.ok(Math.abs(d[i]! - g) <= 1e-3 * maxRef, `grad[${i}] ${d[i]} vs ${g}`));
    await assert.rejects(loadLpipsWeights(join(dir, 'vgg.pth'), join(dir, 'vgg.pth')), /no tensor features\.0\.weight/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
