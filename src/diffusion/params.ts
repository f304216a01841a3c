/**
 * Parameter declaration, the single source of truth for each model's state-dict names and shapes.
 *
 * A model's `declare…Params(d, config)` walks the official module tree in state-dict order and asks a
 * `ParamDeclarer` for each tensor under its official (diffusers / transformers) name. The result is a typed
 * tree of handles that the model's forward code consumes. With the compute core's `Graph` as the declarer
 * (`graph.param(name, shape)`) the handles are graph parameters; with `ParamRecorder` they are just the
 * (name, shape) list used for key checks and `facelift models summary`.
 */

export interface ParamDeclarer<P> {
  param(name: string, shape: readonly number[]): P;
}

export interface ParamSpec {
  name: string;
  shape: number[];
}

/** Records every declaration, in order; a name declared twice is a bug in a model definition. */
export class ParamRecorder implements ParamDeclarer<ParamSpec> {
  readonly specs: ParamSpec[] = [];
  private readonly seen = new Set<string>();

  param(name: string, shape: readonly number[]): ParamSpec {
    if (this.seen.has(name)) throw new Error(`parameter ${name} declared twice`);
    this.seen.add(name);
    const s = { name, shape: [...shape] };
    this.specs.push(s);
    return s;
  }
}

/** Runs a declaration function against a recorder and returns the list of (name, shape). */
export function paramSpecs(declare: (d: ParamDeclarer<ParamSpec>) => unknown): ParamSpec[] {
  const r = new ParamRecorder();
  declare(r);
  return r.specs;
}

export function countParams(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** Declares under `prefix.` (diffusers module paths). */
export function scope<P>(d: ParamDeclarer<P>, prefix: string): ParamDeclarer<P> {
  return { param: (name, shape) => d.param(`${prefix}.${name}`, shape) };
}

// ---- parameter groups of the standard layers (torch module layouts) ----

/** nn.Linear: weight [out, in], optional bias [out]. */
export interface LinearP<P> {
  weight: P;
  bias: P | null;
  inFeatures: number;
  outFeatures: number;
}

export function linearP<P>(d: ParamDeclarer<P>, name: string, inFeatures: number, outFeatures: number, bias = true): LinearP<P> {
  return {
    weight: d.param(`${name}.weight`, [outFeatures, inFeatures]),
    bias: bias ? d.param(`${name}.bias`, [outFeatures]) : null,
    inFeatures,
    outFeatures,
  };
}

/** nn.Conv2d: weight [out, in, k, k], bias [out]. */
export interface Conv2dP<P> {
  weight: P;
  bias: P | null;
  inChannels: number;
  outChannels: number;
  kernel: number;
}

export function conv2dP<P>(d: ParamDeclarer<P>, name: string, inChannels: number, outChannels: number, kernel: number, bias = true): Conv2dP<P> {
  return {
    weight: d.param(`${name}.weight`, [outChannels, inChannels, kernel, kernel]),
    bias: bias ? d.param(`${name}.bias`, [outChannels]) : null,
    inChannels,
    outChannels,
    kernel,
  };
}

/** nn.GroupNorm / nn.LayerNorm with affine weight and bias [channels]. */
export interface NormP<P> {
  weight: P;
  bias: P;
  channels: number;
}

export function normP<P>(d: ParamDeclarer<P>, name: string, channels: number): NormP<P> {
  return { weight: d.param(`${name}.weight`, [channels]), bias: d.param(`${name}.bias`, [channels]), channels };
}
