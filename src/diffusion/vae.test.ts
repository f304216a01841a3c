import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Graph, Session } from '../core/index.ts';
import { parseVaeConfig } from './config.ts';
import { JsonFields } from './json-fields.ts';
import { paramSpecs } from './params.ts';
import { GOLDEN, f32, maxAbsDiff, readSafetensors, tensor } from './testing/golden.ts';
import type { Taps } from './unet.ts';
import { VaeDecoder, VaeEncoder } from './vae.ts';
import { declareVaeParams } from './vae-params.ts';
import { loadWeights } from './weights.ts';

const dir = join(GOLDEN, 'vae-tiny');
const inputs = await readSafetensors(join(dir, 'inputs.safetensors'));
const outputs = await readSafetensors(join(dir, 'outputs.safetensors'));
const inter = await readSafetensors(join(dir, 'intermediates.safetensors'));
const config = parseVaeConfig(JsonFields.fromFile(join(dir, 'config.json'), 'vae-tiny/config.json'));

test('VAE encoder: moments, mean/logvar/std/mode and intermediates within 1e-5', async () => {
  const params = await loadWeights(dir, paramSpecs((d) => declareVaeParams(d, config)), 'vae');
  const g = new Graph('vae-encoder');
  const taps: Taps = {};
  const enc = new VaeEncoder(g, config).forward(g.input('x', [2, 3, 32, 32]), taps);
  const s = await Session.create({ moments: enc.moments, mean: enc.mean, logvar: enc.logvar, std: enc.std, ...taps }, { params, threads: 2 });
  const r = await s.run({ x: f32(tensor(inputs, 'x')) });
  await s.release();
  const check = (name: string, ref: { data: Float64Array }, tol: number) => {
    const d = maxAbsDiff(r[name]!.data as Float32Array, ref.data);
    assert.ok(d <= tol, `${name}: max |Δ| ${d} > ${tol}`);
  };
  check('moments', tensor(outputs, 'moments'), 1e-5);
  check('mean', tensor(outputs, 'latent_mean'), 1e-5);
  check('mean', tensor(outputs, 'latent_mode'), 1e-5);
  check('logvar', tensor(outputs, 'latent_logvar'), 1e-5);
  check('std', tensor(outputs, 'latent_std'), 1e-5);
  for (const k of ['encoder.conv_in', 'encoder.down_blocks.0', 'encoder.down_blocks.1', 'encoder.down_blocks.2', 'encoder.down_blocks.3', 'encoder.mid_block', 'encoder']) {
    check(k, tensor(inter, k), 1e-5);
  }
});

test('VAE decoder: decode(mode) with intermediates and decode(z) within 1e-4', async () => {
  const params = await loadWeights(dir, paramSpecs((d) => declareVaeParams(d, config)), 'vae');
  const g = new Graph('vae-decoder');
  const taps: Taps = {};
  const out = new VaeDecoder(g, config).forward(g.input('z', [2, 4, 4, 4]), taps);
  const s = await Session.create({ image: out, ...taps }, { params, threads: 2 });
  const fromMode = await s.run({ z: f32(tensor(outputs, 'latent_mode')) });
  const fromZ = await s.run({ z: f32(tensor(inputs, 'z')) });
  await s.release();
  const check = (got: ArrayLike<number>, ref: { data: Float64Array }, tol: number, name: string) => {
    const d = maxAbsDiff(got, ref.data);
    assert.ok(d <= tol, `${name}: max |Δ| ${d} > ${tol}`);
  };
  check(fromMode.image!.data as Float32Array, tensor(outputs, 'decoded_from_mode'), 1e-4, 'decoded_from_mode');
  check(fromZ.image!.data as Float32Array, tensor(outputs, 'decoded_from_z'), 1e-4, 'decoded_from_z');
  check(fromMode.post_quant_conv!.data as Float32Array, tensor(inter, 'post_quant_conv(mode)'), 1e-4, 'post_quant_conv');
  check(fromMode['decoder.mid_block']!.data as Float32Array, tensor(inter, 'decoder.mid_block(mode)'), 1e-4, 'mid');
  for (let i = 0; i < 4; i++) check(fromMode[`decoder.up_blocks.${i}`]!.data as Float32Array, tensor(inter, `decoder.up_blocks.${i}(mode)`), 1e-4, `up ${i}`);
});

test('loading refuses weights that do not match the config', async () => {
  await assert.rejects(loadWeights(dir, paramSpecs((d) => declareVaeParams(d, { ...config, latentChannels: 8 })), 'vae'),
    /vae .* does not match .* quant_conv\.weight has shape \[8, 8, 1, 1\], expected \[16, 16, 1, 1\]/);
});
