/**
 * A JobRunner for tests of the server's mechanics that needs no model weights: it writes every result file for
 * real, but the "reconstruction" is a procedural head from src/synth seeded with the job's seed, not the photo.
 * input.png is the photo through the real preprocessing (no auto-crop, no matting); multiview.png and output.png
 * are renders of the synthetic head at the six FaceLift cameras; the turntable and PLY are of the same head.
 * `failOn` makes a job fail on purpose (a seed value), `gate` holds each job until released (queue tests).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { faceliftViews } from '../../cameras/rigs.ts';
import { encodePng, hconcat, planarToImage } from '../../io/image.ts';
import { preprocess } from '../../preprocess/index.ts';
import { writePly } from '../../splat/ply.ts';
import { SplatRenderer } from '../../splat/renderer.ts';
import { renderTurntable } from '../../splat/turntable.ts';
import { generateHead } from '../../synth/head.ts';
import { sampleHeadParams } from '../../synth/params.ts';
import type { PlannedStage } from '../../pipeline/estimate.ts';
import type { JobRunner, RunnerAbout, RunRequest, StageEvent } from '../runner.ts';
import type { JobSettings } from '../settings.ts';

/** For ChildRunner (options without the function-valued ones). */
export function createRunner(options: unknown, onLoadProgress?: (e: StageEvent) => void): JobRunner {
  return new SynthRunner(options as SynthRunnerOptions, onLoadProgress);
}

export const SYNTH_RUNNER_MODULE = new URL(import.meta.url).pathname;
export const SYNTH_STAGES = ['preprocess', 'synthesize', 'render', 'turntable', 'write'] as const;

export interface SynthRunnerOptions {
  /** Side of the renders (default 64). */
  resolution?: number;
  /** Turntable frames (default 6). */
  frames?: number;
  /** Gaussian spacing of the head (default 0.03: a few thousand Gaussians). */
  spacing?: number;
  /**
   * Milliseconds per "generation step": the synthesize stage counts the steps the job asked for, like the
   * pipeline's diffusion stage (default 0).
   */
  stepDelayMs?: number;
  /** Jobs with this seed throw after preprocessing. */
  failOn?: number;
  /** Jobs with this seed end the whole process after preprocessing (a crash, as of a model worker). */
  crashOn?: number;
  /** Awaited before each job starts working (lets tests fill the queue deterministically). */
  gate?: () => Promise<void>;
  /** Delay before ready() resolves, ms; or an error to reject it with. */
  loadDelayMs?: number;
  loadError?: Error;
  /** What about() reports once loaded (default: nothing). */
  about?: RunnerAbout;
}

export class SynthRunner implements JobRunner {
  readonly stages = SYNTH_STAGES;
  private renderer: Promise<SplatRenderer> | undefined;
  private loading: Promise<void> | undefined;
  runs = 0;

  constructor(private readonly opts: SynthRunnerOptions = {}, private readonly onLoadProgress?: (e: StageEvent) => void) {}

  about(): RunnerAbout | undefined {
    return this.loading && this.renderer ? this.opts.about : undefined;
  }

  plan(settings: JobSettings): PlannedStage[] {
    const frames = this.opts.frames ?? 6;
    const steps: Record<(typeof SYNTH_STAGES)[number], number> = {
      preprocess: 1, synthesize: settings.steps, render: 6, turntable: frames, write: 1,
    };
    return SYNTH_STAGES.map((stage) => ({
      stage, steps: steps[stage],
      cost: stage === 'synthesize'
        ? { fixedMs: 50, perStepMs: this.opts.stepDelayMs ?? 1 }
        : { fixedMs: 0, perStepMs: 30 },
    }));
  }

  ready(): Promise<void> {
    this.loading ??= (async () => {
      this.onLoadProgress?.({ stage: 'load', step: 0, total: 2, detail: 'waiting' });
      if (this.opts.loadDelayMs) await new Promise((r) => setTimeout(r, this.opts.loadDelayMs));
      this.onLoadProgress?.({ stage: 'load', step: 1, total: 2, detail: 'renderer' });
      if (this.opts.loadError) throw this.opts.loadError;
      this.renderer = SplatRenderer.create({ threads: 1 });
      await this.renderer;
      this.onLoadProgress?.({ stage: 'load', step: 2, total: 2 });
    })();
    return this.loading;
  }

  async run(req: RunRequest, onProgress: (e: StageEvent) => void): Promise<void> {
    this.runs++;
    await this.opts.gate?.();
    const S = this.opts.resolution ?? 64;
    const renderer = await this.renderer!;
    await mkdir(req.outDir, { recursive: true });

    onProgress({ stage: 'preprocess', step: 0, total: 1 });
    const pre = await preprocess(req.input, { autoCrop: false });
    await writeFile(join(req.outDir, 'input.png'), await encodePng(pre.image));
    onProgress({ stage: 'preprocess', step: 1, total: 1 });
    if (req.settings.seed === this.opts.failOn) throw new Error(`synthetic failure for seed ${req.settings.seed}`);
    if (req.settings.seed === this.opts.crashOn) process.exit(70);

    const steps = req.settings.steps;
    onProgress({ stage: 'synthesize', step: 0, total: steps });
    const head = generateHead(sampleHeadParams(req.settings.seed), { spacing: this.opts.spacing ?? 0.03 });
    for (let k = 1; k < steps; k++) {
      if (this.opts.stepDelayMs) await new Promise((r) => setTimeout(r, this.opts.stepDelayMs));
      onProgress({ stage: 'synthesize', step: k, total: steps });
    }
    onProgress({ stage: 'synthesize', step: steps, total: steps, detail: `${head.gaussians.count} Gaussians` });

    const cameras = faceliftViews(S);
    onProgress({ stage: 'render', step: 0, total: cameras.length });
    await renderer.setScene(head.gaussians);
    const views = [];
    for (const cam of cameras) {
      const r = await renderer.render(cam);
      views.push(planarToImage(r.rgb, S, S));
      onProgress({ stage: 'render', step: views.length, total: cameras.length });
    }
    const strip = await encodePng(hconcat(views));
    await writeFile(join(req.outDir, 'multiview.png'), strip);
    await writeFile(join(req.outDir, 'output.png'), strip);

    const frames = this.opts.frames ?? 6;
    onProgress({ stage: 'turntable', step: 0, total: frames });
    await renderTurntable(head.gaussians, {
      out: join(req.outDir, 'turntable.mp4'), frames, resolution: S, renderer,
      onProgress: (done) => { if (done < frames) onProgress({ stage: 'turntable', step: done, total: frames }); },
    });
    onProgress({ stage: 'turntable', step: frames, total: frames });

    onProgress({ stage: 'write', step: 0, total: 1 });
    await writePly(join(req.outDir, 'gaussians.ply'), head.gaussians);
    onProgress({ stage: 'write', step: 1, total: 1 });
  }

  async close(): Promise<void> {
    if (this.renderer) await (await this.renderer).close();
  }
}
