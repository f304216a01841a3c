import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Graph, Session, cast, type HostTensor } from '../core/index.ts';
import { parseUNetConfig, type UNetConfig } from './config.ts';
import { timestepEmbedding } from './image-conditioning.ts';
import { JsonFields } from './json-fields.ts';
import { GOLDEN, f32, maxAbsDiff, readSafetensors, tensor } from './testing/golden.ts';
import { MultiViewUNet, unetInputs, type Taps } from './unet.ts';
import { loadWeights } from './weights.ts';

const dir = join(GOLDEN, 'mvdiff-tiny');
const inputs = await readSafetensors(join(dir, 'inputs.safetensors'));
const outputs = await readSafetensors(join(dir, 'outputs.safetensors'));
const inter = await readSafetensors(join(dir, 'intermediates.safetensors'));
const config = parseUNetConfig(JsonFields.fromFile(join(dir, 'config.json'), 'mvdiff-tiny/config.json'));

async function runUNet(cfg: UNetConfig, withTaps: boolean, edit?: (sample: Float32Array) => void): Promise<Record<string, HostTensor>> {
  const g = new Graph('unet');
  const unet = new MultiViewUNet(g, cfg);
  const taps: Taps = {};
  const out = unet.forward(unetInputs(g, cfg, 12, 16), withTaps ? taps : undefined);
  const params = await loadWeights(dir, g.params(), 'unet');
  const s = await Session.create({ noise_pred: out, ...taps }, { params, threads: 2 });
  try {
    const ts = Array.from(tensor(inputs, 'timestep').data);
    const sample = f32(tensor(inputs, 'sample'));
    edit?.(sample);
    return await s.run({
      sample,
      timestep_embedding: timestepEmbedding(ts, cfg.blockOutChannels[0], { flipSinToCos: cfg.flipSinToCos, downscaleFreqShift: cfg.freqShift }),
      class_labels: f32(tensor(inputs, 'class_labels')),
      encoder_hidden_states: f32(tensor(inputs, 'encoder_hidden_states')),
    });
  } finally {
    await s.release();
  }
}

test('multi-view UNet (sparse front+self attention): output and every intermediate within the README tolerances', async () => {
  const r = await runUNet(config, true);
  const check = (name: string, ref: string, tol: number) => {
    const d = maxAbsDiff(r[name]!.data as Float32Array, tensor(inter, ref).data);
    assert.ok(d <= tol, `${name}: max |Δ| ${d} > ${tol}`);
  };
  check('time_embedding', 'time_embedding', 1e-5);
  check('class_embedding', 'class_embedding', 1e-5);
  check('conv_in', 'conv_in', 1e-4);
  for (const n of ['attn1.in', 'attn1.out', 'attn2.in', 'attn2.out']) {
    const k = `down_blocks.0.attentions.0.transformer_blocks.0.${n}`;
    check(k, k, 1e-4);
  }
  for (let i = 0; i < 4; i++) { check(`down_blocks.${i}`, `down_blocks.${i}`, 1e-4); check(`up_blocks.${i}`, `up_blocks.${i}`, 1e-4); }
  check('mid_block', 'mid_block', 1e-4);
  check('conv_act', 'conv_act', 1e-4);
  const out = r.noise_pred!.data as Float32Array;
  const d = maxAbsDiff(out, tensor(outputs, 'sample').data);
  assert.ok(d <= 1e-4, `sample: max |Δ| ${d}`);
  assert.ok(maxAbsDiff(out, tensor(outputs, 'sample_fp64').data) <= 1e-4);
  // The same check rejects the untrained dense 6-view attention (control).
  assert.ok(maxAbsDiff(out, tensor(outputs, 'sample_dense_fallback_NOT_TRAINED_PATH').data) > 1e-2);
});

test('dense 6-view mode reproduces the stored dense-fallback control (proves the control differs only in attention)', async () => {
  const r = await runUNet({ ...config, multiViewAttention: 'dense' }, false);
  const out = r.noise_pred!.data as Float32Array;
  assert.ok(maxAbsDiff(out, tensor(outputs, 'sample_dense_fallback_NOT_TRAINED_PATH').data) <= 1e-4);
  assert.ok(maxAbsDiff(out, tensor(outputs, 'sample').data) > 1e-2);
});

test('views see only the front view and themselves: editing view 3 changes only view 3', async () => {
  const base = (await runUNet(config, false)).noise_pred!.data as Float32Array;
  const edited = (await runUNet(config, false, (s) => { for (let i = 3 * 2048; i < 4 * 2048; i++) s[i] = -s[i]!; })).noise_pred!.data as Float32Array;
  const per = 4 * 16 * 16;
  for (let row = 0; row < 12; row++) {
    const d = maxAbsDiff(base.subarray(row * per, (row + 1) * per), edited.subarray(row * per, (row + 1) * per));
    if (row === 3) assert.ok(d > 1e-2, 'the edited view changes');
    else assert.equal(d, 0, `row ${row} must not depend on view 3`);
  }
});

test('chunked attention (61-query blocks, with a remainder) and the fused ONNX Attention give the same output', async () => {
  const ref = tensor(outputs, 'sample').data;
  for (const attention of [{ scoreBlockBytes: 3e6 }, { fused: true }]) {
    const g = new Graph('unet');
    const out = new MultiViewUNet(g, config, attention).forward(unetInputs(g, config, 12, 16));
    const s = await Session.create({ noise_pred: out }, { params: await loadWeights(dir, g.params(), 'unet'), threads: 2 });
    const ts = Array.from(tensor(inputs, 'timestep').data);
    const r = await s.run({
      sample: f32(tensor(inputs, 'sample')),
      timestep_embedding: timestepEmbedding(ts, 8, { flipSinToCos: true, downscaleFreqShift: 0 }),
      class_labels: f32(tensor(inputs, 'class_labels')),
      encoder_hidden_states: f32(tensor(inputs, 'encoder_hidden_states')),
    });
    await s.release();
    assert.ok(maxAbsDiff(r.noise_pred!.data as Float32Array, ref) <= 1e-4, JSON.stringify(attention));
  }
});

test('fp16 weight storage (cast to fp32 at use) stays close to the fp32 golden', async () => {
  const g = new Graph('unet');
  const declarer = { param: (name: string, shape: readonly number[]) => cast(g.param(name, shape, 'float16'), 'float32') };
  const out = new MultiViewUNet(g, config, {}, declarer).forward(unetInputs(g, config, 12, 16));
  const params = await loadWeights(dir, g.params(), 'unet', { dtype: 'float16' });
  assert.ok([...params.values()].every((a) => a instanceof Uint16Array));
  const s = await Session.create({ noise_pred: out }, { params, threads: 2 });
  const r = await s.run({
    sample: f32(tensor(inputs, 'sample')),
    timestep_embedding: timestepEmbedding(Array.from(tensor(inputs, 'timestep').data), 8, { flipSinToCos: true, downscaleFreqShift: 0 }),
    class_labels: f32(tensor(inputs, 'class_labels')),
    encoder_hidden_states: f32(tensor(inputs, 'encoder_hidden_states')),
  });
  await s.release();
  const d = maxAbsDiff(r.noise_pred!.data as Float32Array, tensor(outputs, 'sample').data);
  assert.ok(d > 0 && d < 1e-2, `fp16-weight deviation ${d}`);
});
