/**
 * Loading GS-LRM weights under the official state-dict names (spec gslrm.md §1, §8): a training checkpoint
 * `ckpt_*.pt` holds `{"model": state_dict, "optimizer", …}`; a bare state dict (.pt or .safetensors) is accepted
 * too. Keys are checked against the configuration before anything is read (see params.ts).
 */
import { openWeights } from '../io/weights.ts';
import { PrefixedSource, type TensorSource } from '../io/tensor-source.ts';
import { UserError } from '../util/errors.ts';
import type { GslrmConfig } from './config.ts';
import { checkStateDict, gslrmParamSpec, numel } from './params.ts';

/** Parameters by official key name, float32, C-contiguous, in official order. */
export type GslrmWeights = Map<string, Float32Array>;

/** Opens a checkpoint and returns its state dict as a lazy source (the `model.` level stripped when present). */
export async function openGslrmCheckpoint(path: string): Promise<TensorSource> {
  const src = await openWeights(path);
  if (src.keys().some((k) => k.startsWith('model.'))) return new PrefixedSource(src, 'model.');
  return src;
}

/** Reads and checks every parameter; throws a UserError naming the first bad key if the checkpoint does not fit. */
export async function loadGslrmWeights(path: string, cfg: GslrmConfig): Promise<GslrmWeights> {
  const src = await openGslrmCheckpoint(path);
  try {
    const specs = gslrmParamSpec(cfg);
    checkStateDict(specs, new Map(src.keys().map((k) => [k, src.info(k).shape])), path);
    const out: GslrmWeights = new Map();
    for (const s of specs) {
      const { dtype } = src.info(s.key);
      if (!['F32', 'F16', 'BF16', 'F64'].includes(dtype)) throw new UserError(`${path}: ${s.key} has dtype ${dtype}, expected a float tensor`);
      out.set(s.key, await src.readF32(s.key));
    }
    return out;
  } finally {
    await src.close();
  }
}

/**
 * Random weights with the official initialisation (spec §3: Linear and embeddings N(0, 0.02), LayerNorm weights 1),
 * from a seeded generator; for benchmarks and tests that need a full-size network without a checkpoint.
 */
export function randomGslrmWeights(cfg: GslrmConfig, seed = 0): GslrmWeights {
  const rand = gaussianSource(seed);
  const out: GslrmWeights = new Map();
  for (const s of gslrmParamSpec(cfg)) {
    const a = new Float32Array(numel(s.shape));
    if (s.shape.length === 1) a.fill(1);
    else for (let i = 0; i < a.length; i++) a[i] = 0.02 * rand();
    out.set(s.key, a);
  }
  return out;
}

/** Standard normal samples from a small seeded PRNG (mulberry32 + Box–Muller); speed over statistical finesse. */
function gaussianSource(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const th = 2 * Math.PI * uniform();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}
