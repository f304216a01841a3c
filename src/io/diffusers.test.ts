import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readComponent, readPipeline } from './diffusers.ts';
import { openWeights, totalParams } from './weights.ts';
import { float32ToHalfBits } from './dtypes.ts';
import { stateDictPickle } from './testing/pickle-bytes.ts';
import { writeZip } from './testing/zip-writer.ts';

const G = '/work/shared/golden';
const PIPE = `${G}/pipeline-tiny/pipeckpts`;

test('pipeline-tiny pipeckpts: model_index.json, configs and weights of every component', async () => {
  const pipe = readPipeline(PIPE);
  assert.equal(pipe.className, 'StableUnCLIPImg2ImgPipeline');
  assert.deepEqual([...pipe.components.keys()].sort(), ['feature_extractor', 'image_encoder', 'image_noising_scheduler',
    'image_normalizer', 'scheduler', 'text_encoder', 'tokenizer', 'unet', 'vae']);
  const unet = pipe.components.get('unet')!;
  assert.deepEqual([unet.library, unet.className], ['mvdiffusion.models.unet_mv2d_condition', 'UNetMV2DConditionModel']);
  assert.equal(unet.config?.in_channels, 8);
  assert.equal(unet.config?.num_views, 6);
  assert.equal(unet.config?.sparse_mv_attention, true);
  assert.equal(pipe.components.get('scheduler')!.config?._class_name, 'DDIMScheduler');
  assert.equal(pipe.components.get('scheduler')!.weightsFile, null);
  assert.match(pipe.components.get('feature_extractor')!.configFile!, /preprocessor_config\.json$/);
  assert.match(pipe.components.get('image_encoder')!.weightsFile!, /image_encoder\/model\.safetensors$/);

  // README §1: tensor counts, parameter counts and dtypes per component.
  const expected: Record<string, [number, number, string]> = {
    image_encoder: [40, 32768, 'F16'], text_encoder: [36, 45728, 'F16'], unet: [690, 558972, 'F32'], vae: [248, 334383, 'F16'],
  };
  for (const [name, [count, params, dtype]] of Object.entries(expected)) {
    const s = await openWeights(join(PIPE, name));
    assert.equal(s.keys().length, count, name);
    assert.equal(totalParams(s), params, name);
    assert.ok(s.keys().every((k) => s.info(k).dtype === dtype), name);
    assert.equal(s.metadata().format, 'pt');
    await s.close();
  }
  const norm = await openWeights(join(PIPE, 'image_normalizer'));
  assert.deepEqual(norm.keys().sort(), ['mean', 'std']);
  assert.deepEqual(norm.info('std'), { dtype: 'F32', shape: [1, 16] });
  await norm.close();

  const all = await openWeights(PIPE);
  assert.equal(all.keys().length, 40 + 36 + 690 + 248 + 2);
  assert.ok(all.has('unet/conv_in.weight'));
  await all.close();
});

test('pipeline-tiny: the UNet equals mvdiff-tiny bit for bit; the VAE is vae-tiny rounded to fp16', async () => {
  const unet = await openWeights(join(PIPE, 'unet'));
  const ref = await openWeights(`${G}/mvdiff-tiny/diffusion_pytorch_model.safetensors`);
  assert.deepEqual([...unet.keys()].sort(), [...ref.keys()].sort());
  for (const k of ref.keys()) assert.deepEqual(await unet.read(k), await ref.read(k), k);
  await unet.close();
  await ref.close();

  const vae = await openWeights(join(PIPE, 'vae'));
  const vref = await openWeights(`${G}/vae-tiny/diffusion_pytorch_model.safetensors`);
  assert.deepEqual([...vae.keys()].sort(), [...vref.keys()].sort());
  for (const k of vref.keys()) {
    assert.deepEqual(await vae.read(k), float32ToHalfBits(await vref.readF32(k), 'F16'), k);
  }
  await vae.close();
  await vref.close();
});

test('component folders with .bin weights (torch zip) are found; a missing component folder is reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffusers-'));
  try {
    const comp = join(dir, 'unet');
    mkdirSync(comp);
    writeFileSync(join(comp, 'config.json'), JSON.stringify({ _class_name: 'UNet2DConditionModel', in_channels: 4 }));
    const pkl = stateDictPickle([{ name: 'conv_in.weight', storageType: 'HalfStorage', key: '0', storageNumel: 2, offset: 0, shape: [2], stride: [1] }], 'proto2', 1);
    await writeZip(join(comp, 'diffusion_pytorch_model.bin'), [
      { name: 'archive/data.pkl', data: pkl },
      { name: 'archive/data/0', data: new Uint8Array(float32ToHalfBits([0.5, -1], 'F16').buffer) },
    ]);
    const c = readComponent(comp);
    assert.equal(c.config?.in_channels, 4);
    assert.match(c.weightsFile!, /diffusion_pytorch_model\.bin$/);
    const s = await openWeights(comp, { prefix: 'state_dict.' });
    assert.deepEqual([...(await s.readF32('conv_in.weight'))], [0.5, -1]);
    await s.close();
    writeFileSync(join(dir, 'model_index.json'), JSON.stringify({ _class_name: 'X', unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'] }));
    assert.throws(() => readPipeline(dir), /lists component "vae" but the folder vae\/ is missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
