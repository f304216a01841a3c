import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TorchFile } from './torch-pt.ts';
import { openWeights } from './weights.ts';
import { PyDict } from './pickle.ts';
import { SafetensorsFile } from './safetensors.ts';

const GOLDEN = '/work/shared/golden';
const CKPT = `${GOLDEN}/gslrm-tiny/ckpt_0000000000000042.pt`;

interface Summary { shape: number[]; dtype: string; sum: number; sum_sq: number; first4: number[]; last: number }

test('golden gslrm-tiny checkpoint: every tensor matches weights_summary.json', async () => {
  const summary = JSON.parse(readFileSync(`${GOLDEN}/gslrm-tiny/weights_summary.json`, 'utf8')) as Record<string, Summary>;
  const src = await openWeights(CKPT, { prefix: 'model.' });
  try {
    assert.deepEqual([...src.keys()].sort(), Object.keys(summary).sort());
    for (const [name, s] of Object.entries(summary)) {
      assert.equal(s.dtype, 'float32');
      assert.deepEqual(src.info(name), { dtype: 'F32', shape: s.shape });
      const a = await src.readF32(name);
      assert.equal(a.length, s.shape.reduce((x, y) => x * y, 1), name);
      let sum = 0, sumSq = 0;
      for (const v of a) { sum += v; sumSq += v * v; }
      assert.ok(Math.abs(sum - s.sum) <= 1e-9 * Math.max(1, Math.abs(s.sum)) + 1e-9, `${name} sum ${sum} vs ${s.sum}`);
      assert.ok(Math.abs(sumSq - s.sum_sq) <= 1e-9 * s.sum_sq + 1e-12, `${name} sum_sq`);
      assert.deepEqual([...a.subarray(0, 4)], s.first4, `${name} first4`);
      assert.equal(a[a.length - 1], s.last, `${name} last`);
    }
  } finally {
    await src.close();
  }
});

test('golden checkpoint: training metadata and BUILD state are decoded, not executed', async () => {
  const f = await TorchFile.open(CKPT);
  try {
    const root = f.root as PyDict;
    assert.ok(root instanceof PyDict);
    assert.equal(root.get('fwdbwd_pass_step'), 42);
    assert.equal(root.get('param_update_step'), 42);
    const model = root.get('model') as PyDict;
    assert.ok(model.state instanceof PyDict && (model.state as PyDict).has('_metadata'));
    assert.ok(f.keys().every((k) => k.startsWith('model.')));
  } finally {
    await f.close();
  }
});

test('golden pipeline-tiny clr_embeds.pt: fp16 [6,77,32] matching the recorded stats', async () => {
  const f = await TorchFile.open(`${GOLDEN}/pipeline-tiny/clr_embeds.pt`);
  try {
    assert.deepEqual(f.keys(), ['']);
    assert.deepEqual(f.info(''), { dtype: 'F16', shape: [6, 77, 32] });
    const raw = await f.read('');
    assert.ok(raw instanceof Uint16Array && raw.length === 6 * 77 * 32);
    const x = await f.readF32('');
    let mean = 0;
    for (const v of x) mean += v;
    mean /= x.length;
    let varc = 0;
    for (const v of x) varc += (v - mean) ** 2;
    const std = Math.sqrt(varc / (x.length - 1));
    assert.ok(Math.abs(mean - -0.0147) < 5e-4, `mean ${mean}`);
    assert.ok(Math.abs(std - 0.997) < 5e-4, `std ${std}`);
    // The same prompts through the text encoder in fp32 differ from the fp16 embeddings by at most 4.1e-3.
    const cases = await SafetensorsFile.open(`${GOLDEN}/pipeline-tiny/cases.safetensors`);
    const ref = await cases.readF32('common.text_hidden_fp32');
    await cases.close();
    let maxDiff = 0;
    for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i]! - ref[i]!));
    assert.ok(maxDiff > 0 && maxDiff <= 4.2e-3, `max |clr - text_hidden_fp32| = ${maxDiff}`);
  } finally {
    await f.close();
  }
});
