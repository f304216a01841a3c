import { test } from 'node:test';
import { readGoldenSafetensors, f32, assertClose, assertGoldenGaussians, GOLDEN_DIR } from './testing/golden.ts';
import { goldenCameras } from './testing/cameras.ts';
import { loadGslrmConfig, gslrmDims } from './config.ts';
import { loadGslrmWeights } from './weights.ts';
import { computeRays, posedInput } from './rays.ts';
import { patchify } from './tokens.ts';
import { GslrmNetwork, type ForwardStage } from './network.ts';

test('GS-LRM tiny: every intermediate of the forward pass matches the golden run', async () => {
  const cfg = loadGslrmConfig(GOLDEN_DIR + 'config.yaml');
  const weights = await loadGslrmWeights(GOLDEN_DIR + 'ckpt_0000000000000042.pt', cfg);
  const inputs = await readGoldenSafetensors('inputs.safetensors');
  const inter = await readGoldenSafetensors('intermediates.safetensors');
  const gauss = await readGoldenSafetensors('gaussians.safetensors');
  const rays = computeRays(goldenCameras(inputs));
  const { imageSize: S, patch } = gslrmDims(cfg);
  const patches = patchify(posedInput(f32(inputs, 'image'), rays), 4, 9, S, S, patch);
  // chunk 24 < 66 tokens, so the query-chunked attention path is what is tested.
  const net = await GslrmNetwork.create(cfg, weights, { views: 4, chunk: 24, threads: 1 });
  const stages: ForwardStage[] = [];
  try {
    const raw = await net.forward(patches, { onStage: (s) => stages.push(s) });
    assertClose(raw, f32(gauss, 'gaussians_raw'), 1e-4, 1e-4, 'gaussians_raw');
  } finally {
    await net.release();
  }
  for (const s of stages) {
    if (s.kind === 'embed') {
      assertClose(s.patchTokens, f32(inter, 'patch_tokens'), 2e-5, 1e-5, 'patch_tokens');
      assertClose(s.tokensIn, f32(inter, 'tokens_in'), 2e-5, 1e-5, 'tokens_in');
      assertClose(s.tokensLn, f32(inter, 'tokens_ln'), 1e-4, 1e-4, 'tokens_ln');
    } else if (s.kind === 'layer') {
      assertClose(s.output, f32(inter, `layer_out.${s.layer}`), 1e-4, 1e-4, `layer_out.${s.layer}`);
      if (s.layer === s.layers - 1) assertClose(s.output, f32(inter, 'transformer_out'), 1e-4, 1e-4, 'transformer_out');
    }
  }
  const kinds = stages.map((s) => s.kind).join(',');
  if (kinds !== 'embed,layer,layer,heads') throw new Error(`unexpected stage sequence ${kinds}`);
});

test('reconstruct() (fused attention, 16 queries × 2 heads per chunk): golden views + cameras → decoded Gaussians within tolerance; mismatched inputs are refused', async () => {
  const { reconstruct } = await import('./reconstruct.ts');
  const cfg = loadGslrmConfig(GOLDEN_DIR + 'config.yaml');
  const model = { config: cfg, weights: await loadGslrmWeights(GOLDEN_DIR + 'ckpt_0000000000000042.pt', cfg) };
  const inputs = await readGoldenSafetensors('inputs.safetensors');
  const gauss = await readGoldenSafetensors('gaussians.safetensors');
  const cams = goldenCameras(inputs);
  const views = { views: 4, height: 32, width: 32, rgb: f32(inputs, 'image') };
  const progress: number[] = [];
  const { gaussians: g, pixelT } = await reconstruct(views, cams, model, { threads: 1, chunk: 16, headChunk: 2, fused: true, onProgress: (d) => progress.push(d) });
  if (progress.join() !== '0,1,2') throw new Error(`progress ${progress.join()}`);
  assertGoldenGaussians(g, pixelT, gauss);
  const { default: assert } = await import('node:assert/strict');
  await assert.rejects(reconstruct(views, cams.slice(0, 3), model), /4 view image\(s\) but 3 camera\(s\)/);
  await assert.rejects(reconstruct({ views: 4, height: 16, width: 16, rgb: new Float32Array(4 * 3 * 256) }, cams, model), /views are 16×16, but the GS-LRM config expects 32×32/);
});

test('GS-LRM tiny in int8: each layer switches its int8 weights, and the raw Gaussians stay near the golden', async () => {
  const cfg = loadGslrmConfig(GOLDEN_DIR + 'config.yaml');
  const weights = await loadGslrmWeights(GOLDEN_DIR + 'ckpt_0000000000000042.pt', cfg);
  const inputs = await readGoldenSafetensors('inputs.safetensors');
  const gauss = await readGoldenSafetensors('gaussians.safetensors');
  const { imageSize: S, patch } = gslrmDims(cfg);
  const patches = patchify(posedInput(f32(inputs, 'image'), computeRays(goldenCameras(inputs))), 4, 9, S, S, patch);
  const net = await GslrmNetwork.create(cfg, weights, { views: 4, threads: 1, int8: true });
  const layers: Float32Array[] = [];
  let raw: Float32Array;
  try {
    raw = await net.forward(patches, { onStage: (s) => s.kind === 'layer' && layers.push(s.output) });
  } finally {
    await net.release();
  }
  const ref = f32(gauss, 'gaussians_raw');
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (raw[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  const snr = 10 * Math.log10(den / num);
  // Not the golden's 1e-4: activations are quantized per tensor, and this random-weight model's are wide (measured
  // 26–28 dB per layer; the trained demo model's renders stay at 50+ dB, BENCHMARKS.md § int8).
  if (!(snr > 20)) throw new Error(`int8 raw Gaussians at ${snr.toFixed(1)} dB SNR from the golden`);
  // Every layer near its golden output: a block session left with another layer's weights would be far off.
  const inter = await readGoldenSafetensors('intermediates.safetensors');
  for (const [l, out] of layers.entries()) {
    const want = f32(inter, `layer_out.${l}`);
    let e = 0, p = 0;
    for (let i = 0; i < want.length; i++) {
      e += (out[i]! - want[i]!) ** 2;
      p += want[i]! ** 2;
    }
    const layerSnr = 10 * Math.log10(p / e);
    if (!(layerSnr > 20)) throw new Error(`int8 layer ${l} output at ${layerSnr.toFixed(1)} dB SNR from the golden`);
  }
});
