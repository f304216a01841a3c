/**
 * The GS-LRM parameter specification: official state-dict key names and shapes (spec gslrm.md §1), in the order
 * the official `state_dict()` lists them, and the check a checkpoint must pass before it is loaded.
 */
import { UserError } from '../util/errors.ts';
import { gslrmDims, type GslrmConfig } from './config.ts';

export interface ParamSpec {
  key: string;
  shape: readonly number[];
}

/**
 * Keys the official loader tolerates without a matching parameter: the frozen VGG19 of the perceptual loss is
 * registered under `loss_calculator` and therefore saved in every checkpoint. Exactly this prefix, nothing else.
 */
export const IGNORED_KEY_PREFIX = 'loss_calculator.';

export function gslrmParamSpec(cfg: GslrmConfig): ParamSpec[] {
  const { d, nLayer, nGlobal, gaussianDim, patchDim, patch } = gslrmDims(cfg);
  const specs: ParamSpec[] = [
    { key: 'gaussian_position_embeddings', shape: [nGlobal, d] },
    { key: 'patch_embedder.1.weight', shape: [d, patchDim] },
    { key: 'input_layer_norm.weight', shape: [d] },
  ];
  for (let l = 0; l < nLayer; l++) {
    const p = `transformer_layers.${l}`;
    specs.push(
      { key: `${p}.norm1.weight`, shape: [d] },
      { key: `${p}.attn.to_qkv.weight`, shape: [3 * d, d] },
      { key: `${p}.attn.fc.weight`, shape: [d, d] },
      { key: `${p}.norm2.weight`, shape: [d] },
      { key: `${p}.mlp.mlp.0.weight`, shape: [4 * d, d] },
      { key: `${p}.mlp.mlp.2.weight`, shape: [d, 4 * d] },
    );
  }
  specs.push(
    { key: 'gaussian_upsampler.layernorm.weight', shape: [d] },
    { key: 'gaussian_upsampler.linear.weight', shape: [gaussianDim, d] },
    { key: 'pixel_gaussian_decoder.0.weight', shape: [d] },
    { key: 'pixel_gaussian_decoder.1.weight', shape: [patch * patch * gaussianDim, d] },
  );
  return specs;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function countParams(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + numel(s.shape), 0);
}

/**
 * Checks a checkpoint's tensor list against the specification: every parameter present with its exact shape,
 * nothing else except `loss_calculator.*`. Throws a UserError naming the first offending key (and how many
 * more there are), so a checkpoint of another architecture fails with a readable reason.
 */
export function checkStateDict(specs: readonly ParamSpec[], found: ReadonlyMap<string, readonly number[]>, source = 'checkpoint'): void {
  const wanted = new Map(specs.map((s) => [s.key, s.shape]));
  const missing = specs.filter((s) => !found.has(s.key)).map((s) => s.key);
  const unexpected = [...found.keys()].filter((k) => !wanted.has(k) && !k.startsWith(IGNORED_KEY_PREFIX));
  const mismatched = specs
    .filter((s) => found.has(s.key) && !sameShape(found.get(s.key)!, s.shape))
    .map((s) => `${s.key} has shape [${found.get(s.key)!.join(', ')}], expected [${s.shape.join(', ')}]`);
  const problems: string[] = [];
  if (missing.length) problems.push(`missing key ${missing[0]}${more(missing)}`);
  if (unexpected.length) problems.push(`unexpected key ${unexpected[0]}${more(unexpected)}`);
  if (mismatched.length) problems.push(`${mismatched[0]}${more(mismatched)}`);
  if (problems.length) {
    throw new UserError(`${source} does not match the GS-LRM configuration: ${problems.join('; ')} (is it a checkpoint of another model or config?)`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function more(list: readonly string[]): string {
  return list.length > 1 ? ` (and ${list.length - 1} more)` : '';
}
