/**
 * Weight mapping for the diffusion components. Our parameter names ARE the official diffusers/transformers
 * state-dict names (declared in *-params.ts), so the mapping is the identity; what this module adds is the
 * contract: every declared parameter must be present with its exact shape, any other tensor in the file is an
 * error (the reference loads these components strictly), and fp16/bf16 files are widened to float32.
 */
import { openWeights } from '../io/weights.ts';
import type { TensorSource } from '../io/tensor-source.ts';
import { UserError } from '../util/errors.ts';
import { toHalfArray, type ParamStore } from '../core/index.ts';

export interface DeclaredParam {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Checks `src` against the declared parameters; throws a UserError listing the first problems. */
export function checkWeights(src: TensorSource, declared: readonly DeclaredParam[], label: string): void {
  const problems: string[] = [];
  const want = new Set(declared.map((p) => p.name));
  for (const p of declared) {
    if (!src.has(p.name)) { problems.push(`missing ${p.name} [${p.shape.join(', ')}]`); continue; }
    const got = src.info(p.name).shape;
    if (got.length !== p.shape.length || got.some((d, i) => d !== p.shape[i])) problems.push(`${p.name} has shape [${got.join(', ')}], expected [${p.shape.join(', ')}]`);
  }
  for (const k of src.keys()) if (!want.has(k)) problems.push(`unexpected tensor ${k}`);
  if (problems.length > 0) {
    throw new UserError(`${label} (${src.path}) does not match the ${label} this config builds: ${problems.length} problem(s): ` +
      `${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}. Is the config.json from the same model as the weights?`);
  }
}

/**
 * Reads the declared parameters of a component folder or weight file into a ParamStore: float32 arrays, or with
 * `dtype: 'float16'` IEEE-half bits (Uint16Array; fp16 files are taken as they are, others rounded).
 */
export async function loadWeights(path: string, declared: readonly DeclaredParam[], label: string, opts: { dtype?: 'float32' | 'float16' } = {}): Promise<ParamStore> {
  const src = await openWeights(path);
  try {
    checkWeights(src, declared, label);
    const store: ParamStore = new Map();
    for (const p of declared) {
      if (opts.dtype === 'float16') {
        store.set(p.name, src.info(p.name).dtype === 'F16' ? (await src.read(p.name)) as Uint16Array : toHalfArray(await src.readF32(p.name)));
      } else {
        store.set(p.name, await src.readF32(p.name));
      }
    }
    return store;
  } finally {
    await src.close();
  }
}
