/**
 * Progress events of the pipeline. One shape for every consumer (CLI progress bars, the web app's event stream,
 * tests): a stage of one image (or of model loading) reports `step` out of `total`; step 0 marks its start and
 * step === total its end.
 */

/** Model loading (once per process). */
export type LoadStage = 'download' | 'load';
/** Per image, in order. */
export type ImageStage = 'preprocess' | 'diffusion' | 'reconstruct' | 'render' | 'filter' | 'turntable' | 'write';
export type Stage = LoadStage | ImageStage;

export const IMAGE_STAGES: readonly ImageStage[] = ['preprocess', 'diffusion', 'reconstruct', 'render', 'filter', 'turntable', 'write'];

export interface ProgressEvent {
  stage: Stage;
  step: number;
  total: number;
  /** Milliseconds since the stage started. */
  elapsedMs: number;
  /** The input file, for image stages. */
  image?: string;
  /** What is being worked on (e.g. the component being loaded, the file being downloaded). */
  detail?: string;
}

export type ProgressListener = (e: ProgressEvent) => void;

/** Emits a stage's events and measures its duration. */
export class StageClock {
  private readonly t0 = performance.now();
  private readonly cpu0 = process.cpuUsage();
  private finishing = false;

  constructor(
    private readonly listener: ProgressListener | undefined,
    readonly stage: Stage,
    private total: number,
    private readonly image?: string,
  ) {
    this.emit(0);
  }

  /** Milliseconds since the stage started. */
  get elapsedMs(): number {
    return performance.now() - this.t0;
  }

  /** CPU seconds the whole process (every thread: onnxruntime's, the rasterizer's workers) spent since the start. */
  get cpuSeconds(): number {
    const d = process.cpuUsage(this.cpu0);
    return (d.user + d.system) / 1e6;
  }

  /** Reports progress; steps ≥ total are left to `done()`, so every stage ends with exactly one step === total. */
  emit(step: number, detail?: string, total?: number): void {
    if (total !== undefined) this.total = total;
    if (step >= this.total && !this.finishing) return;
    this.listener?.({
      stage: this.stage, step, total: this.total, elapsedMs: this.elapsedMs,
      ...(this.image !== undefined ? { image: this.image } : {}),
      ...(detail !== undefined ? { detail } : {}),
    });
  }

  /** Emits step === total; returns the stage's duration in ms. */
  done(detail?: string): number {
    this.finishing = true;
    this.emit(this.total, detail);
    return this.elapsedMs;
  }
}
