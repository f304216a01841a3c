/**
 * What the job queue needs from a model: load once, then turn one uploaded photo into a result folder, reporting
 * per-stage progress. The real implementation wraps the pipeline (pipeline-runner.ts); tests may use any runner
 * that writes the same files.
 */
import type { PlannedStage } from '../pipeline/estimate.ts';
import type { JobSettings } from './settings.ts';

/** The files a finished job offers, in the order the UI shows them (spec/pipeline.md §6). */
export const RESULT_FILES = ['input.png', 'multiview.png', 'output.png', 'turntable.mp4', 'gaussians.ply'] as const;
export type ResultFile = (typeof RESULT_FILES)[number];

/** One progress report: `step` of `total` in `stage`; step 0 starts a stage and step === total ends it. */
export interface StageEvent {
  stage: string;
  step: number;
  total: number;
  detail?: string;
}

export interface RunRequest {
  /** The job's id (a remote runner names its queue entry after it). */
  id?: string;
  /** The uploaded photo (already checked to be an image). */
  input: string;
  /** Where the result files go; the runner creates it. */
  outDir: string;
  settings: JobSettings;
  /**
   * Post-processing when it is not the runner's own: `infer` — the CLI's filters; `gradio` — the web app's; and the
   * turntable's frames (jobs from `facelift infer --redis` match a local `facelift infer` byte for byte).
   */
  post?: { profile: 'infer' | 'gradio'; frames: number };
}

export interface RunHooks {
  /** While the job waits in the runner's own queue: how many jobs are ahead of it. */
  onPosition?(ahead: number): void;
}

/** Whose models a runner serves, known once they are loaded (shown on the page). */
export interface RunnerAbout {
  model: 'official' | 'demo';
  /** Plain-words notes about what was chosen for the user (the demo models, no matting, …). */
  notices: string[];
}

export interface JobRunner {
  /** The per-image stages, in order, that `run` reports. */
  readonly stages: readonly string[];
  /** The stages a job with these settings will report and their expected costs (weights of its progress). */
  plan?(settings: JobSettings): PlannedStage[];
  /** Resolves once the models are loaded (started at most once); rejects with the reason they cannot be. */
  ready(): Promise<void>;
  /** The latest model download/load progress, while loading (shown by the UI on a first, slow start). */
  loadProgress?(): StageEvent | undefined;
  /** Which models serve the jobs, once ready. */
  about?(): RunnerAbout | undefined;
  /**
   * Writes every file of RESULT_FILES into `req.outDir`, or throws. Called for one job at a time unless the runner
   * is `remote`.
   */
  run(req: RunRequest, onProgress: (e: StageEvent) => void, hooks?: RunHooks): Promise<void>;
  /** Jobs run elsewhere and wait in a queue of their own first (reported through `hooks.onPosition`). */
  readonly remote?: boolean;
  close(): Promise<void>;
}
