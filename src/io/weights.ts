import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { findWeightsFile, isDiffusersPipeline, readJson, readPipeline } from './diffusers.ts';
import { SafetensorsFile } from './safetensors.ts';
import { TorchFile } from './torch-pt.ts';
import { MergedSource, PrefixedSource } from './tensor-source.ts';
import type { TensorSource } from './tensor-source.ts';
import { UserError } from '../util/errors.ts';

export interface OpenWeightsOptions {
  /** Keep only tensors whose name starts with this and strip it, e.g. "model." for a GS-LRM training checkpoint. */
  prefix?: string;
  /** diffusers weight variant, e.g. "fp16" for `diffusion_pytorch_model.fp16.safetensors`. */
  variant?: string;
}

/**
 * Opens any weights container as a lazy TensorSource:
 *  - `*.safetensors`; `*.pt|.pth|.bin|.ckpt` (torch.save zip);
 *  - `*.index.json` (sharded safetensors or .bin: `weight_map` name → shard file);
 *  - a diffusers component folder (its `diffusion_pytorch_model.*` / `model.*` weights);
 *  - a diffusers pipeline folder (all components; names are `<component>/<tensor>`).
 */
export async function openWeights(path: string, opts: OpenWeightsOptions = {}): Promise<TensorSource> {
  const src = await openRaw(path, opts.variant);
  if (!opts.prefix) return src;
  try {
    return new PrefixedSource(src, opts.prefix);
  } catch (err) {
    await src.close();
    throw err;
  }
}

async function openRaw(path: string, variant?: string): Promise<TensorSource> {
  if (!existsSync(path)) throw new UserError(`${path} does not exist`);
  if (statSync(path).isDirectory()) {
    if (isDiffusersPipeline(path)) {
      const pipe = readPipeline(path, variant);
      const parts: Array<{ label: string; source: TensorSource }> = [];
      try {
        for (const c of pipe.components.values()) {
          if (c.weightsFile) parts.push({ label: c.name, source: await openFile(c.weightsFile) });
        }
      } catch (err) {
        await Promise.all(parts.map((p) => p.source.close()));
        throw err;
      }
      return new MergedSource(path, parts);
    }
    const w = findWeightsFile(path, variant);
    if (!w) {
      throw new UserError(`${path} has no model_index.json and no weight file ` +
        '(expected diffusion_pytorch_model.safetensors, model.safetensors, *.bin or a *.index.json)');
    }
    return openFile(w);
  }
  return openFile(path);
}

async function openFile(path: string): Promise<TensorSource> {
  const name = basename(path).toLowerCase();
  if (name.endsWith('.index.json')) return openSharded(path);
  if (name.endsWith('.safetensors')) return SafetensorsFile.open(path);
  if (/\.(pt|pth|bin|ckpt)$/.test(name)) return TorchFile.open(path);
  // Unknown extension: decide by content (safetensors starts with a small little-endian length, zip with PK).
  try {
    return await TorchFile.open(path);
  } catch {
    return SafetensorsFile.open(path);
  }
}

/** A `*.safetensors.index.json` / `*.bin.index.json` shard index. */
async function openSharded(indexPath: string): Promise<TensorSource> {
  const index = readJson(indexPath);
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null) throw new UserError(`${indexPath}: no "weight_map" object`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>).map(String))];
  const parts: Array<{ label: string; source: TensorSource }> = [];
  try {
    for (const s of shards) {
      const p = join(dirname(indexPath), s);
      if (!existsSync(p)) throw new UserError(`${indexPath} names shard ${s}, which is missing (incomplete download?)`);
      parts.push({ label: '', source: await openFile(p) });
    }
    const merged = new MergedSource(indexPath, parts);
    const missing = Object.keys(map as object).filter((k) => !merged.has(k));
    if (missing.length) throw new UserError(`${indexPath}: ${missing.length} tensors of weight_map are in no shard (e.g. ${missing[0]})`);
    return merged;
  } catch (err) {
    await Promise.all(parts.map((p) => p.source.close()));
    throw err;
  }
}

/** Total parameter count (sum of element counts) of a source. */
export function totalParams(src: TensorSource): number {
  let n = 0;
  for (const k of src.keys()) n += src.info(k).shape.reduce((a, b) => a * b, 1);
  return n;
}
