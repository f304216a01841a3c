/**
 * The JobRunner over the real pipeline: models are loaded once (loadModels) and every job is one runInference
 * call with the gradio app's post-processing (spec/pipeline.md §8: filter scaling 0.2 / floater 0.75, a 180-frame
 * turntable at 30 fps).
 */
import { inferencePlan, type PlannedStage } from '../pipeline/estimate.ts';
import { IMAGE_STAGES, type ProgressListener } from '../pipeline/events.ts';
import { loadModels, type FaceliftModels, type LoadModelsOptions } from '../pipeline/models.ts';
import { runInference } from '../pipeline/run.ts';
import { GRADIO_FILTERS, type FilterOptions } from '../splat/filters.ts';
import type { JobRunner, RunnerAbout, RunRequest, StageEvent } from './runner.ts';
import type { JobSettings } from './settings.ts';

export interface PipelineRunnerOptions extends LoadModelsOptions {
  /** Turntable frames (default 180, as the gradio app). */
  turntableFrames?: number;
  filter?: FilterOptions;
  /** Model download/load progress. */
  onLoadProgress?: ProgressListener;
}

export const GRADIO_TURNTABLE_FRAMES = 180;

/** What a job of the real pipeline will do (for the ChildRunner that runs it in a worker process too). */
export function pipelinePlan(settings: JobSettings, frames = GRADIO_TURNTABLE_FRAMES): PlannedStage[] {
  return inferencePlan({ steps: settings.steps, frames });
}

export class PipelineRunner implements JobRunner {
  readonly stages = IMAGE_STAGES;
  private models: Promise<FaceliftModels> | undefined;
  private loaded: RunnerAbout | undefined;

  constructor(private readonly opts: PipelineRunnerOptions = {}) {}

  plan(settings: JobSettings): PlannedStage[] {
    return pipelinePlan(settings, this.opts.turntableFrames);
  }

  ready(): Promise<void> {
    this.models ??= loadModels(this.opts, this.opts.onLoadProgress);
    return this.models.then((m) => {
      this.loaded = { model: m.model, notices: m.notices };
    });
  }

  about(): RunnerAbout | undefined {
    return this.loaded;
  }

  async run(req: RunRequest, onProgress: (e: StageEvent) => void): Promise<void> {
    await this.ready();
    const models = await this.models!;
    const s = req.settings;
    await runInference(req.input, {
      models, outDir: req.outDir,
      autoCrop: s.autoCrop, seed: s.seed, guidanceScale: s.guidanceScale, steps: s.steps,
      ...(s.scheduler ? { scheduler: s.scheduler } : {}),
      turntableFrames: req.post?.frames ?? this.opts.turntableFrames ?? GRADIO_TURNTABLE_FRAMES,
      // The CLI's post-processing is runInference's default.
      ...(req.post?.profile === 'infer' ? {} : { filter: this.opts.filter ?? GRADIO_FILTERS }),
    }, (e) => onProgress({ stage: e.stage, step: e.step, total: e.total, ...(e.detail !== undefined ? { detail: e.detail } : {}) }));
  }

  async close(): Promise<void> {
    const models = await this.models?.catch(() => undefined);
    await models?.close();
  }
}

/** For ChildRunner: the pipeline runner inside the model worker process. */
export function createRunner(options: unknown, onLoadProgress: (e: StageEvent) => void): JobRunner {
  return new PipelineRunner({ ...(options as PipelineRunnerOptions), onLoadProgress });
}

/** Path of this module, for ChildRunner's `module`. */
export const PIPELINE_RUNNER_MODULE = new URL(import.meta.url).pathname;
