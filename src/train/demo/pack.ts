/**
 * Packs a trained pipeline and GS-LRM (the demo models into models/demo, a mouse fine-tune anywhere) into a weights
 * folder in the official layout that `facelift infer --weights` reads:
 *   mvdiffusion/pipeckpts/   the exported pipeline, its UNet, VAE and image encoder stored in fp16 (the sampler
 *                            computes in fp32; fp16 storage halves the size, as the official VAE and encoder ship)
 *   mvdiffusion/clr_embeds.pt the per-view prompt embeddings the UNet was trained with (absent when the pipeline
 *                            computes them with its text encoder)
 *   gslrm/ckpt_<pass>.pt     the GS-LRM weights only ({"model": …}, fp16), no optimizer state
 *   gslrm/config.yaml        the config it was trained with, its image size set to the pipeline's views'
 * Both folders are written beside the target and renamed into place; other files in it (README) are kept.
 */
import {
  cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { toHalfArray } from '../../core/index.ts';
import { openWeights } from '../../io/weights.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { pyDict, saveTorch, torchTensor } from '../../io/torch-save.ts';
import { UserError } from '../../util/errors.ts';
import { listCheckpoints, readCheckpoint } from '../checkpoint.ts';
import { dumpYaml, readYamlTree, type Tree } from '../config-tree.ts';

const FP16_COMPONENTS: Record<string, string> = {
  unet: 'diffusion_pytorch_model.safetensors',
  vae: 'diffusion_pytorch_model.safetensors',
  image_encoder: 'model.safetensors',
};

async function toFp16(file: string, out: string): Promise<void> {
  const src = await openWeights(file);
  try {
    const tensors = new Map<string, { dtype: 'F16'; shape: readonly number[]; data: Uint16Array }>();
    for (const k of src.keys()) {
      tensors.set(k, { dtype: 'F16', shape: src.info(k).shape, data: toHalfArray(await src.readF32(k)) });
    }
    await writeSafetensors(out, tensors, { format: 'pt' });
  } finally {
    await src.close();
  }
}

export interface PackResult {
  dir: string;
  bytes: number;
  files: Array<{ path: string; bytes: number }>;
}

export interface PackOptions {
  pipeline: string;
  gslrmRun: string;
  gslrmConfig: string;
  out: string;
}

export async function packDemo(o: PackOptions): Promise<PackResult> {
  if (!existsSync(join(o.pipeline, 'model_index.json'))) {
    throw new UserError(`${o.pipeline} is not a pipeckpts/ folder (no model_index.json)`);
  }
  const embeds = join(o.pipeline, 'clr_embeds.pt');
  if (!existsSync(embeds) && !existsSync(join(o.pipeline, 'text_encoder'))) {
    throw new UserError(`${o.pipeline} has neither clr_embeds.pt nor a text_encoder/ to compute prompt embeddings ` +
      'with (a pipeline from facelift train new-pipeline, or one trained with prompt_embed_path, has clr_embeds.pt)');
  }
  const ckpts = listCheckpoints(o.gslrmRun);
  if (ckpts.length === 0) throw new UserError(`${o.gslrmRun} holds no ckpt_*.pt; train the GS-LRM first`);
  const tmp = `${o.out}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const pipe = join(tmp, 'mvdiffusion/pipeckpts');
  mkdirSync(pipe, { recursive: true });
  for (const name of readdirSync(o.pipeline)) {
    if (name === 'clr_embeds.pt') continue;
    const file = FP16_COMPONENTS[name];
    if (!file) {
      cpSync(join(o.pipeline, name), join(pipe, name), { recursive: true });
      continue;
    }
    mkdirSync(join(pipe, name));
    cpSync(join(o.pipeline, name, 'config.json'), join(pipe, name, 'config.json'));
    await toFp16(join(o.pipeline, name, file), join(pipe, name, file));
  }
  if (existsSync(embeds)) cpSync(embeds, join(tmp, 'mvdiffusion/clr_embeds.pt'));

  const ck = await readCheckpoint(ckpts[0]!);
  mkdirSync(join(tmp, 'gslrm'));
  const half = (k: string, v: Float32Array) => torchTensor(toHalfArray(v), ck.shapes.get(k) ?? [v.length], 'F16');
  const model = pyDict([...ck.model].map(([k, v]) => [k, half(k, v)] as const), true);
  const name = basename(ckpts[0]!);
  await saveTorch(join(tmp, 'gslrm', name), pyDict([['model', model]]), name.replace(/\.pt$/, ''));
  // The GS-LRM reads the pipeline's views: its patch tokens and rays work at any multiple of the patch size (FaceLift
  // itself trains it at 256² and runs it at 512²), so the image size follows the pipeline (e.g. a mouse GS-LRM
  // fine-tuned at 384² behind a 256² pipeline).
  const tree = readYamlTree(o.gslrmConfig);
  const unet = JSON.parse(readFileSync(join(o.pipeline, 'unet/config.json'), 'utf8')) as { sample_size?: unknown };
  const tokenizer = (tree.model as Tree | undefined)?.image_tokenizer as Tree | undefined;
  if (typeof unet.sample_size === 'number' && tokenizer) tokenizer.image_size = 8 * unet.sample_size;
  writeFileSync(join(tmp, 'gslrm/config.yaml'), dumpYaml(tree));

  // Only the two model folders are replaced: the README and licence notes beside them stay.
  mkdirSync(o.out, { recursive: true });
  for (const part of ['mvdiffusion', 'gslrm']) {
    rmSync(join(o.out, part), { recursive: true, force: true });
    renameSync(join(tmp, part), join(o.out, part));
  }
  rmSync(tmp, { recursive: true, force: true });
  const files: PackResult['files'] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else files.push({ path: p, bytes: statSync(p).size });
    }
  };
  for (const part of ['mvdiffusion', 'gslrm']) walk(join(o.out, part));
  return { dir: o.out, bytes: files.reduce((n, f) => n + f.bytes, 0), files };
}
