/**
 * What a model contributes to training (design.md §8): a `TrainStep` turns a batch into a loss and adds the
 * parameter gradients into its accumulators; the `Trainer` owns everything else (data order, accumulation,
 * clipping and skip rules, optimizer, schedule, checkpoints, logging).
 */

export type ParamStore = Map<string, Float32Array>;

export interface StepResult {
  /** The loss that was differentiated (already weighted, before the accumulation scale). */
  loss: number;
  /** Other scalars to log (l2, psnr, perceptual, usage, …). */
  metrics: Record<string, number>;
}

export interface TrainStep<Batch> {
  /** Every model tensor under its checkpoint name; the optimizer updates the trainable ones in place. */
  readonly params: ParamStore;
  /** Each parameter's shape (checkpoints store tensors with their shapes). */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** Names of the parameters that receive no updates. */
  readonly frozen: ReadonlySet<string>;
  /** Gradient accumulators (trainable names only); zeroed by the trainer after each update. */
  readonly grads: ParamStore;
  /** Decoupled weight decay for a parameter (e.g. 0 for 1-D tensors). */
  weightDecay(name: string): number;
  /**
   * One forward/backward pass: adds `scale`·∂loss/∂θ into `grads`. `pass` is the forward/backward pass counter
   * (loss warm-ups depend on it).
   */
  run(batch: Batch, pass: number, scale: number): Promise<StepResult>;
  close(): Promise<void>;
}
