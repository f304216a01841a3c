import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadGslrmConfig, parseGslrmConfig, OFFICIAL_GSLRM_CONFIG, gslrmDims } from './config.ts';
import { checkStateDict, countParams, gslrmParamSpec, IGNORED_KEY_PREFIX } from './params.ts';
import { GOLDEN_DIR } from './testing/golden.ts';
import { UserError } from '../util/errors.ts';

const OFFICIAL_YAML = fileURLToPath(new URL('./configs/gslrm.yaml', import.meta.url));

test('the shipped configs/gslrm.yaml is the official configuration', () => {
  assert.deepEqual(loadGslrmConfig(OFFICIAL_YAML), OFFICIAL_GSLRM_CONFIG);
});

test('the official configuration has exactly 303,565,824 parameters (no weights allocated)', () => {
  const spec = gslrmParamSpec(OFFICIAL_GSLRM_CONFIG);
  assert.equal(countParams(spec), 303_565_824);
  assert.equal(spec.length, 3 + 24 * 6 + 4);
  const d = gslrmDims(OFFICIAL_GSLRM_CONFIG);
  assert.deepEqual([d.heads, d.tokensPerView, d.patchDim, d.gaussianDim], [16, 4096, 576, 14]);
});

test('the tiny config matches the golden checkpoint keys, order and shapes (except loss_calculator.*)', () => {
  const cfg = loadGslrmConfig(GOLDEN_DIR + 'config.yaml');
  const summary = JSON.parse(readFileSync(GOLDEN_DIR + 'weights_summary.json', 'utf8')) as Record<string, { shape: number[] }>;
  const golden = Object.entries(summary).filter(([k]) => !k.startsWith(IGNORED_KEY_PREFIX)).map(([key, v]) => ({ key, shape: v.shape }));
  assert.deepEqual(gslrmParamSpec(cfg), golden);
  assert.ok(Object.keys(summary).some((k) => k.startsWith(IGNORED_KEY_PREFIX)), 'golden has loss_calculator keys to ignore');
  checkStateDict(gslrmParamSpec(cfg), new Map(Object.entries(summary).map(([k, v]) => [k, v.shape])));
});

test('checkStateDict names the missing, unexpected or mis-shaped key', () => {
  const cfg = loadGslrmConfig(GOLDEN_DIR + 'config.yaml');
  const spec = gslrmParamSpec(cfg);
  const full = () => new Map(spec.map((s) => [s.key, s.shape]));
  const missing = full();
  missing.delete('transformer_layers.1.attn.fc.weight');
  assert.throws(() => checkStateDict(spec, missing), (e: Error) => e instanceof UserError && /missing key transformer_layers\.1\.attn\.fc\.weight/.test(e.message));
  const extra = full().set('transformer_layers.2.norm1.weight', [64]);
  assert.throws(() => checkStateDict(spec, extra), /unexpected key transformer_layers\.2\.norm1\.weight/);
  // Only loss_calculator.* is tolerated: a key that merely resembles it is still unexpected.
  const lossish = full().set('loss_calculatorX.w', [1]);
  assert.throws(() => checkStateDict(spec, lossish), /unexpected key loss_calculatorX\.w/);
  const shape = full().set('patch_embedder.1.weight', [64, 288]);
  assert.throws(() => checkStateDict(spec, shape), /patch_embedder\.1\.weight has shape \[64, 288\], expected \[64, 576\]/);
  // The official checkpoint against the tiny config: a checkpoint of another architecture.
  const big = new Map(gslrmParamSpec(OFFICIAL_GSLRM_CONFIG).map((s) => [s.key, s.shape]));
  assert.throws(() => checkStateDict(spec, big, 'ckpt.pt'), /ckpt\.pt does not match .*unexpected key transformer_layers\.2\./);
});

test('config errors say which key is wrong', () => {
  const base = readFileSync(OFFICIAL_YAML, 'utf8');
  assert.throws(() => parseGslrmConfig(base.replace('d_head: 64', 'd_head: 60'), 'x.yaml'), /x\.yaml: transformer\.d 1024 is not a multiple of d_head 60/);
  assert.throws(() => parseGslrmConfig(base.replace('patch_size: 8', 'patch_size: eight'), 'x.yaml'), /model\.image_tokenizer\.patch_size must be a positive integer, got "eight"/);
  assert.throws(() => parseGslrmConfig(base.replace(/  transformer:\n(    .*\n){3}/, ''), 'x.yaml'), /model\.transformer is missing/);
  assert.throws(() => parseGslrmConfig(base.replace('hard_pixelalign: true', 'hard_pixelalign: false'), 'x.yaml'), /hard_pixelalign/);
  assert.throws(() => parseGslrmConfig('model: [1', 'x.yaml'), /x\.yaml: not valid YAML/);
  // Just the model section is accepted too.
  const model = parseGslrmConfig('image_tokenizer: {image_size: 32, patch_size: 8, in_channels: 9}\ntransformer: {d: 64, d_head: 16, n_layer: 2}\ngaussians: {n_gaussians: 2}\nhard_pixelalign: true\nuse_custom_plucker: true\n');
  assert.equal(model.transformer.n_layer, 2);
});

test('the golden .pt checkpoint loads under the official names; a checkpoint of another size is refused by key', async () => {
  const { loadGslrmWeights } = await import('./weights.ts');
  const cfg = loadGslrmConfig(GOLDEN_DIR + 'config.yaml');
  const summary = JSON.parse(readFileSync(GOLDEN_DIR + 'weights_summary.json', 'utf8')) as Record<string, { first4: number[]; last: number }>;
  const w = await loadGslrmWeights(GOLDEN_DIR + 'ckpt_0000000000000042.pt', cfg);
  assert.deepEqual([...w.keys()], gslrmParamSpec(cfg).map((s) => s.key));
  const qkv = w.get('transformer_layers.1.attn.to_qkv.weight')!;
  assert.deepEqual([...qkv.subarray(0, 4)], summary['transformer_layers.1.attn.to_qkv.weight'].first4);
  const wider = { ...cfg, transformer: { ...cfg.transformer, n_layer: 3 } };
  await assert.rejects(loadGslrmWeights(GOLDEN_DIR + 'ckpt_0000000000000042.pt', wider), /missing key transformer_layers\.2\.norm1\.weight/);
});

test('the full-size network graphs declare exactly the official parameters, 303,565,824 in all (built without weights)', async () => {
  const { buildGslrmGraphs } = await import('./network.ts');
  const g = buildGslrmGraphs(OFFICIAL_GSLRM_CONFIG, { views: 6 });
  const declared = new Map<string, readonly number[]>();
  for (const p of [...g.embed.graph.params(), ...g.heads.graph.params()]) declared.set(p.name, p.shape);
  for (let l = 0; l < 24; l++) for (const p of g.block.graph.params()) declared.set(p.name.replace(/^block\./, `transformer_layers.${l}.`), p.shape);
  const spec = gslrmParamSpec(OFFICIAL_GSLRM_CONFIG);
  assert.deepEqual(new Map(spec.map((s) => [s.key, s.shape])), declared);
  assert.equal(g.embed.graph.paramCount() + g.heads.graph.paramCount() + 24 * g.block.graph.paramCount(), 303_565_824);
  assert.deepEqual(g.embed.outputs.tokensLn.shape, [1, 24_578, 1024]);
  assert.deepEqual(g.heads.outputs.rawPixel.shape, [1, 6 * 512 * 512, 14]);
  assert.deepEqual(g.heads.outputs.rawGlobal.shape, [1, 2, 14]);
});
