import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runTorchPython } from '../../io/testing/torch-python.ts';
import { TorchFile } from '../../io/torch-pt.ts';
import { PerceptualLoss, VGG_PREFIX, vggSpec, vggWeightsFrom } from './perceptual.ts';

/**
 * The loss and its gradient against the reference's formula run by torch 1.13 (VGG19 of utils_losses.py written
 * out: conv+ReLU, AvgPool2d after conv2/4/8/12, features after ReLU 2/4/6/10/14, weighted L1s / 255), on random
 * weights (the formula, not the weights, is under test).
 */
test('perceptual loss: value and gradient equal the reference formula in torch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'perc-'));
  try {
    const file = join(dir, 'p.pt');
    runTorchPython(
      `
import sys, torch, torch.nn.functional as F
torch.manual_seed(0)
ch = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
w = {}
for i, c in enumerate(ch):
    cin = 3 if i == 0 else ch[i - 1]
    w[f'${VGG_PREFIX}conv{i+1}.weight'] = torch.randn(c, cin, 3, 3) * (2.0 / (9 * cin)) ** 0.5
    w[f'${VGG_PREFIX}conv{i+1}.bias'] = torch.randn(c) * 0.1
pred = torch.rand(2, 3, 32, 32, requires_grad=True)
target = torch.rand(2, 3, 32, 32)
mean = torch.tensor([123.6800, 116.7790, 103.9390]).view(1, 3, 1, 1)
def feats(x):
    out, h = [], x
    for i in range(1, 15):
        h = F.relu(F.conv2d(h, w[f'${VGG_PREFIX}conv{i}.weight'], w[f'${VGG_PREFIX}conv{i}.bias'], padding=1))
        if i in (2, 4, 6, 10, 14): out.append(h)
        if i in (2, 4, 8, 12): h = F.avg_pool2d(h, 2, 2)
    return out
p, t = pred * 255.0 - mean, target * 255.0 - mean
fp, ft = feats(p), feats(t)
lw = [1.0, 1/2.6, 1/4.8, 1/3.7, 1/5.6, 10/1.5]
loss = lw[0] * (t - p).abs().mean()
for k in range(5): loss = loss + lw[k + 1] * (ft[k] - fp[k]).abs().mean()
loss = loss / 255.0
loss.backward()
out = dict(w); out.update(pred=pred.detach(), target=target, loss=loss.detach(), dpred=pred.grad)
torch.save(out, sys.argv[1])`,
      [file],
    );
    const f = await TorchFile.open(file);
    const model = new Map<string, Float32Array>();
    for (const s of vggSpec()) model.set(s.key, await f.readF32(s.key));
    const pred = await f.readF32('pred'),
      target = await f.readF32('target');
    const want = (await f.readF32('loss'))[0]!,
      wantGrad = await f.readF32('dpred');
    await f.close();
    const loss = await PerceptualLoss.create(vggWeightsFrom(model, 'test'), 2, 32, 2);
    const d = new Float32Array(pred.length);
    const got = await loss.lossAndGrad(pred, target, 2, 32, d, 2);
    await loss.release();
    assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want), `loss ${got} vs torch ${want}`);
    let maxErr = 0,
      maxRef = 0;
    for (let i = 0; i < d.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(d[i]! / 2 - wantGrad[i]!));
      maxRef = Math.max(maxRef, Math.abs(wantGrad[i]!));
    }
    assert.ok(maxErr <= 1e-4 * maxRef, `gradient max error ${maxErr} (max |grad| ${maxRef})`);
    model.delete(`${VGG_PREFIX}conv7.bias`);
    assert.throws(
      () => vggWeightsFrom(model, 'ckpt.pt'),
      /needs VGG-19 weights \(1 of 32 .* missing in ckpt\.pt\); start from an official FaceLift checkpoint/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('VGG-19 from a MatConvNet .mat: layers{idx}.weights{1} permuted [3,3,in,out] → [out,in,3,3], as the reference loads it', async () => {
  const { vggWeightsFromMat } = await import('./perceptual.ts');
  const path = new URL('../../io/testdata/vgg-layout-tiny.mat', import.meta.url).pathname;
  const chans = [2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5];
  const w = vggWeightsFromMat(path, chans);
  assert.equal(w.size, 32);
  // conv3 is layer 5: filters[1, 2, 0, 1] (scipy indexing [y, x, in, out]) = −1.0009248 → weight[out 1][in 0][y 1][x 2].
  const conv3 = w.get(`${VGG_PREFIX}conv3.weight`)!;
  assert.equal(conv3.length, 3 * 2 * 9);
  assert.ok(Math.abs(conv3[((1 * 2 + 0) * 3 + 1) * 3 + 2]! - -1.0009248) < 1e-6);
  assert.throws(() => vggWeightsFromMat(path), /layer 0 is not conv1 of VGG-19 \(filters 3×3×3×2, expected 3×3×3×64\)/);
});
