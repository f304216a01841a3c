/**
 * diffusers' `EMAModel` (training_utils.py, v0.30) as train_diffusion.py uses it: shadow copies of the trainable
 * parameters, updated after every optimizer update with
 *   decay_n = min(max_decay, (1 + k)/(10 + k)), k = n − update_after_step − 1 (0 for k ≤ 0: the first update copies)
 *   shadow ← shadow − (1 − decay_n)·(shadow − param)
 * in float32 as torch computes it (the factor rounded to float32, one rounding per operation).
 */
export interface EmaOptions {
  /** Maximum decay (diffusers' `decay`, default 0.9999). */
  decay?: number;
  minDecay?: number;
  updateAfterStep?: number;
}

/** The fields diffusers' `EMAModel.save_pretrained` writes into the model config next to the weights. */
export interface EmaConfigFields {
  decay: number;
  min_decay: number;
  optimization_step: number;
  update_after_step: number;
  use_ema_warmup: boolean;
  inv_gamma: number;
  power: number;
}

export class Ema {
  readonly maxDecay: number;
  readonly minDecay: number;
  readonly updateAfterStep: number;
  /** Updates taken so far (diffusers' `optimization_step`). */
  optimizationStep = 0;

  /** `shadow` starts as copies of `params` (names in state-dict order). */
  constructor(
    readonly shadow: Map<string, Float32Array>,
    opts: EmaOptions = {},
  ) {
    this.maxDecay = opts.decay ?? 0.9999;
    this.minDecay = opts.minDecay ?? 0;
    this.updateAfterStep = opts.updateAfterStep ?? 0;
  }

  static of(params: ReadonlyMap<string, Float32Array>, names: Iterable<string>, opts: EmaOptions = {}): Ema {
    const shadow = new Map<string, Float32Array>();
    for (const n of names) {
      const p = params.get(n);
      if (!p) throw new Error(`EMA: no parameter ${n}`);
      shadow.set(n, Float32Array.from(p));
    }
    return new Ema(shadow, opts);
  }

  decayAt(step: number): number {
    const k = Math.max(0, step - this.updateAfterStep - 1);
    if (k <= 0) return 0;
    return Math.max(Math.min((1 + k) / (10 + k), this.maxDecay), this.minDecay);
  }

  /** One update towards `params` (every shadow name must be present). */
  step(params: ReadonlyMap<string, Float32Array>): void {
    this.optimizationStep++;
    const omd = Math.fround(1 - this.decayAt(this.optimizationStep));
    for (const [name, s] of this.shadow) {
      const p = params.get(name);
      if (!p || p.length !== s.length) throw new Error(`EMA: parameter ${name} is missing or changed size`);
      for (let i = 0; i < s.length; i++) s[i] = s[i]! - Math.fround(omd * Math.fround(s[i]! - p[i]!));
    }
  }

  configFields(): EmaConfigFields {
    return {
      decay: this.maxDecay,
      min_decay: this.minDecay,
      optimization_step: this.optimizationStep,
      update_after_step: this.updateAfterStep,
      use_ema_warmup: false,
      inv_gamma: 1,
      power: 2 / 3,
    };
  }
}
