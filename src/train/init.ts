/**
 * Fresh parameters for a network trained from scratch, as torch initialises the layers when they are built:
 * Linear/Conv weights kaiming-uniform with a = √5 (U(±1/√fan_in)), biases U(±1/√fan_in) of their layer,
 * normalisation weights 1 and biases 0, embeddings N(0, 0.02) as transformers' CLIP. Seeded, so a recipe's
 * starting point is the same on every machine.
 */
import type { ParamSpec } from '../diffusion/params.ts';
import { createRng } from '../synth/rng.ts';

const NORM = /(norm|layer_norm|layernorm|ln_\w+|pre_layrnorm|post_layernorm)[^.]*\.(weight|bias)$/i;
const EMBEDDING = /(embedding|class_embedding)(\.weight)?$/;

export function initialParams(specs: readonly ParamSpec[], seed: number): Map<string, Float32Array> {
  const r = createRng(seed);
  const fanIn = new Map<string, number>();
  for (const s of specs) {
    if (s.name.endsWith('.weight') && s.shape.length >= 2) {
      fanIn.set(s.name.slice(0, -'.weight'.length), s.shape.slice(1).reduce((a, b) => a * b, 1));
    }
  }
  let spare: number | null = null;
  const normal = (): number => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const rad = Math.sqrt(-2 * Math.log(1 - r.next()));
    const th = 2 * Math.PI * r.next();
    spare = rad * Math.sin(th);
    return rad * Math.cos(th);
  };
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const a = new Float32Array(s.shape.reduce((x, y) => x * y, 1));
    const layer = s.name.replace(/\.(weight|bias)$/, '');
    if (NORM.test(s.name) && s.shape.length === 1) {
      if (s.name.endsWith('.weight')) a.fill(1);
    } else if (EMBEDDING.test(s.name)) {
      for (let i = 0; i < a.length; i++) a[i] = 0.02 * normal();
    } else if (s.shape.length >= 2 || fanIn.has(layer)) {
      const fan = s.shape.length >= 2 ? s.shape.slice(1).reduce((x, y) => x * y, 1) : (fanIn.get(layer) ?? 1);
      const bound = 1 / Math.sqrt(fan);
      for (let i = 0; i < a.length; i++) a[i] = (2 * r.next() - 1) * bound;
    } else if (/\.(mean|std)$/.test(s.name) === false && s.name.endsWith('.weight')) {
      a.fill(1);
    }
    out.set(s.name, a);
  }
  return out;
}
