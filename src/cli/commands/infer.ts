import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { basename } from 'node:path';
import { DEFAULT_SCHEDULER, DEFAULT_STEPS, SCHEDULERS, type Scheduler } from '../../diffusion/pipeline.ts';
import { checkInputFolder, runFolder, type BatchOutcome } from '../../pipeline/batch.ts';
import {
  calibrate, estimate, formatRemaining, inferencePlan, type PlannedStage, type StageCost, type StageProgress,
} from '../../pipeline/estimate.ts';
import type { ProgressEvent } from '../../pipeline/events.ts';
import { loadModels, type MattingChoice } from '../../pipeline/models.ts';
import type { ModelChoice } from '../../pipeline/weights.ts';
import type { DetectorChoice } from '../../preprocess/index.ts';
import { UserError } from '../../util/errors.ts';
import { runRemoteBatch } from '../../queue/batch.ts';
import type { JobSettings } from '../../server/settings.ts';
import { intOption, positiveOption } from '../options.ts';
import { deviceOption, mattingOption, modelOption } from '../model-options.ts';

interface InferOpts {
  inputDir?: string;
  input_dir?: string;
  outputDir?: string;
  output_dir?: string;
  autoCrop: boolean;
  auto_crop?: boolean;
  seed: number;
  guidanceScale?: number;
  guidance_scale_2D?: number;
  steps?: number;
  step_2D?: number;
  scheduler: Scheduler;
  weights?: string;
  promptEmbeds?: string;
  model: ModelChoice;
  matting?: MattingChoice;
  mattingModel?: string;
  detector: DetectorChoice;
  frames: number;
  threads?: number;
  device: 'auto' | 'cpu' | 'cuda';
  fp16Unet?: boolean;
  int8?: boolean;
  json?: boolean;
  redis?: string;
  listen?: string;
  advertise?: string;
}



/** The new spelling or the reference's; both given and different is an error. */
function either<T>(a: T | undefined, b: T | undefined, names: string, fallback: T): T {
  if (a !== undefined && b !== undefined && a !== b) throw new UserError(`${names} are the same option; give one of them`);
  return a ?? b ?? fallback;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function formatSeconds(ms: number): string {
  const t = Math.round(ms / 1000);
  return t < 60 ? `${t}s` : t < 3600 ? `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s` : `${Math.floor(t / 3600)}h${String(Math.floor(t / 60) % 60).padStart(2, '0')}m`;
}

/**
 * One cli-progress bar per stage (ETA from the stage's own rate) and the time left for the whole image
 * (pipeline/estimate.ts, as the web app shows it); plain lines when stderr is not a terminal.
 */
class StageBars {
  private bar: cliProgress.SingleBar | undefined;
  private key = '';
  prefix = '';
  private readonly tty = Boolean(process.stderr.isTTY);
  private plan: PlannedStage[] = [];
  private readonly stages = new Map<string, StageProgress>();
  /** Costs measured by the previous image of this run. */
  private costs: Record<string, StageCost> | undefined;

  constructor(private readonly planOf: (costs?: Record<string, StageCost>) => PlannedStage[]) {}

  /** A new image starts. */
  startImage(prefix: string): void {
    this.prefix = prefix;
    this.plan = this.planOf(this.costs);
    this.stages.clear();
  }

  /** "image ~25 min left" once the image's speed is known. */
  private imageLeft(e: ProgressEvent): string {
    if (e.image === undefined || !this.plan.some((p) => p.stage === e.stage)) return '';
    const prev = this.stages.get(e.stage);
    const state = e.step >= e.total ? 'done' : 'running';
    const atStepMs = prev && prev.step === e.step ? (prev.atStepMs ?? e.elapsedMs) : e.elapsedMs;
    this.stages.set(e.stage, { stage: e.stage, state, step: e.step, total: e.total, elapsedMs: e.elapsedMs, atStepMs });
    const pending = (p: PlannedStage): StageProgress => ({ stage: p.stage, state: 'pending', step: 0, total: p.steps, elapsedMs: 0 });
    const progress = this.plan.map((p) => this.stages.get(p.stage) ?? pending(p));
    if (e.stage === 'write' && state === 'done') this.costs = calibrate(this.plan, progress);
    const { remainingMs } = estimate(this.plan, progress, { calibrated: this.costs !== undefined });
    return remainingMs === null ? 'image: estimating time left' : `image ${formatRemaining(remainingMs)}`;
  }

  on(e: ProgressEvent): void {
    const key = `${e.image ?? ''}|${e.stage}`;
    // ETA from this stage's own rate so far (cli-progress's estimate shows INF/NULL until it has samples).
    const eta = e.step > 0 && e.step < e.total ? formatSeconds((e.elapsedMs / e.step) * (e.total - e.step)) : e.step >= e.total ? '0s' : '…';
    const left = this.imageLeft(e);
    const payload = {
      prefix: this.prefix, stage: e.stage.padEnd(11), detail: e.detail ?? '', stageEta: eta, left: left ? `| ${left} ` : '',
    };
    if (key !== this.key) {
      this.bar?.stop();
      this.key = key;
      this.bar = undefined;
      if (this.tty) {
        this.bar = new cliProgress.SingleBar({
          stream: process.stderr, hideCursor: true, etaBuffer: 8, fps: 5,
          format: '{prefix}{stage} {bar} {value}/{total} | {duration_formatted} | ETA {stageEta} {left}{detail}',
        }, cliProgress.Presets.shades_classic);
        this.bar.start(e.total, e.step, payload);
      }
    }
    this.bar?.setTotal(e.total);
    this.bar?.update(e.step, payload);
    if (e.step >= e.total) {
      this.bar?.stop();
      this.bar = undefined;
      this.key = '';
      const line = `${this.prefix}${e.stage} done in ${secs(e.elapsedMs)}${left ? `; ${left}` : ''}`;
      if (!this.tty) process.stderr.write(`${line}\n`);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}

/** `--listen host:port` → its parts. */
function listenOption(v: string | undefined): { host?: string; port?: number } {
  if (!v) return {};
  const m = /^(.*?)(?::(\d+))?$/.exec(v)!;
  return { ...(m[1] ? { host: m[1].replace(/^\[|\]$/g, '') } : {}), ...(m[2] ? { port: Number(m[2]) } : {}) };
}

/** `facelift infer --redis`: the folder through the worker queue, with one overall progress line. */
async function inferRemote(o: InferOpts, inputDir: string, outputDir: string, settings: JobSettings): Promise<void> {
  const local = (['weights', 'promptEmbeds', 'mattingModel', 'threads', 'fp16Unet', 'int8'] as const).filter((k) => o[k] !== undefined);
  if (local.length) {
    throw new UserError(`with --redis the models are the workers' (set them on facelift worker): drop ${local.map((k) => `--${k}`).join(', ')}`);
  }
  const tty = Boolean(process.stderr.isTTY) && !o.json;
  let lastLine = '';
  const outcomes = await runRemoteBatch({
    redisUrl: o.redis!, inputDir, outputDir, settings, frames: o.frames,
    listen: listenOption(o.listen), ...(o.advertise ? { advertise: o.advertise } : {}),
    onProgress: (p) => {
      if (!tty) return;
      const running = [...p.running].map(([name, e]) => `${name}: ${e.stage} ${e.step}/${e.total}`).slice(0, 3).join(', ');
      const line = `images ${p.done + p.skipped}/${p.total} done${p.failed ? `, ${p.failed} failed` : ''}` +
        `${running ? ` | ${running}` : ''}`;
      if (line !== lastLine) process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1).padEnd(lastLine.length)}`);
      lastLine = line;
    },
    onOutcome: (r) => {
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r.ok ? { ok: true, file: r.file, name: r.name, skipped: r.skipped, ...(r.result as object) } : r)}\n`);
        return;
      }
      if (tty) process.stderr.write('\n');
      lastLine = '';
      if (r.ok) process.stderr.write(`${basename(r.file)} → ${r.outDir}${r.skipped ? ' (already done: skipped)' : ''}\n`);
      else process.stderr.write(`facelift: ${basename(r.file)} failed: ${r.error}\n`);
    },
  });
  const failed = outcomes.filter((r) => !r.ok);
  if (!o.json) {
    process.stderr.write(`${outcomes.length - failed.length} of ${outcomes.length} image(s) done${failed.length ? `, ${failed.length} failed` : ''}; results in ${outputDir}\n`);
  }
  if (failed.length) process.exitCode = 1;
}

export function register(program: Command): void {
  program.command('infer')
    .description('portraits → 3D Gaussian heads: for every .png/.jpg/.jpeg in the input folder, OUT/<name>/ with input.png, ' +
      'multiview.png, gaussians.ply, output.png, turntable.mp4 and result.json')
    .option('-i, --input-dir <dir>', 'folder of portrait photos (default: examples)')
    .addOption(new Option('--input_dir <dir>', 'alias of --input-dir (reference spelling)').hideHelp())
    .option('-o, --output-dir <dir>', 'results go to DIR/<name>/ (default: outputs)')
    .addOption(new Option('--output_dir <dir>').hideHelp())
    .option('--auto-crop', 'detect the face and crop it to the training framing (default)', true)
    .option('--no-auto-crop', 'no face detection: matting + resize to 512² (for photos already framed like examples/)')
    .addOption(new Option('--auto_crop', 'reference spelling of --auto-crop').hideHelp())
    .option('--seed <n>', 'seed of the sampler noise, applied afresh to every image', intOption('--seed', 0, Number.MAX_SAFE_INTEGER), 4)
    .option('--guidance-scale <x>', 'classifier-free guidance scale (default 3)', positiveOption('--guidance-scale'))
    .addOption(new Option('--guidance_scale_2D <x>').argParser(positiveOption('--guidance_scale_2D')).hideHelp())
    .option('--steps <n>', 'sampling steps (default: 20 for dpmpp2m and unipc, 50 for ddim)',
      intOption('--steps', 1, 1000))
    .addOption(new Option('--scheduler <name>', "the sampler: DPM-Solver++ (2M), UniPC, or FaceLift's own DDIM " +
      '(ddim with 50 steps is the reference exactly; the others reach its quality in 20: BENCHMARKS.md ' +
      '§ sampler-quality)').choices([...SCHEDULERS]).default(DEFAULT_SCHEDULER))
    .addOption(new Option('--step_2D <n>').argParser(intOption('--step_2D', 1, 1000)).hideHelp())
    .addOption(modelOption())
    .option('--weights <dir>', 'weights folder in the official layout (mvdiffusion/pipeckpts/, gslrm/ckpt_*.pt); default: ' +
      '$FACELIFT_WEIGHTS, ./checkpoints, or the facelift cache (with --model official: downloaded from Hugging Face when missing)')
    .option('--prompt-embeds <file>', "FaceLift's clr_embeds.pt (default: found in the weights folder, else computed from text_encoder/ and cached)")
    .addOption(mattingOption())
    .addOption(deviceOption())
    .option('--matting-model <file>', 'local model file for --matting (ONNX for modnet/u2net, .tflite for selfie; default: MODNet fetched once into the Hugging Face cache)')
    .addOption(new Option('--detector <model>', 'face detector: MTCNN as the reference, or SSD').choices(['mtcnn', 'ssd']).default('mtcnn'))
    .option('--frames <n>', 'turntable frames (30 fps)', intOption('--frames', 1, 100_000), 150)
    .option('--fp16-unet', 'keep the UNet weights in fp16 (about 1.7 GB less memory; computed in fp32)')
    .option('--int8', 'run the linear layers of both models in int8 (weights quantized at load; convolutions stay ' +
      'fp32; fidelity and speed in BENCHMARKS.md § int8)')
    .option('--threads <n>', 'onnxruntime threads (default: all cores)', intOption('--threads', 1, 1024))
    .option('--json', 'print one JSON result per image on stdout instead of progress bars')
    .option('--redis <url>', 'run the images on `facelift worker` machines through this Redis queue (redis://…, rediss://…)')
    .option('--listen <host:port>', 'with --redis: where this command serves photos to workers and takes results ' +
      '(default 127.0.0.1, a free port)')
    .option('--advertise <url>', 'with --redis: the URL at which workers reach --listen (default: http://HOST:PORT)')
    .action(async (o: InferOpts) => {
      const inputDir = either(o.inputDir, o.input_dir, '--input-dir and --input_dir', 'examples');
      const outputDir = either(o.outputDir, o.output_dir, '--output-dir and --output_dir', 'outputs');
      const guidanceScale = either(o.guidanceScale, o.guidance_scale_2D, '--guidance-scale and --guidance_scale_2D', 3);
      const steps = either(o.steps, o.step_2D, '--steps and --step_2D', DEFAULT_STEPS[o.scheduler]);
      // --auto_crop is the reference's store_true flag (always on there); --no-auto-crop wins only when given alone.
      if (o.auto_crop && !o.autoCrop) throw new UserError('--auto_crop and --no-auto-crop contradict each other');
      // A wrong or empty folder is said before the models load (or start downloading).
      checkInputFolder(inputDir);
      const scheduler = { scheduler: o.scheduler };
      if (o.redis) {
        return inferRemote(o, inputDir, outputDir, { autoCrop: o.autoCrop, guidanceScale, steps, seed: o.seed, ...scheduler });
      }
      const bars = o.json ? undefined : new StageBars((costs) => inferencePlan({ steps, frames: o.frames }, costs));
      const onProgress = bars ? (e: ProgressEvent) => bars.on(e) : undefined;
      const models = await loadModels({
        ...(o.weights ? { weights: o.weights } : {}),
        model: o.model,
        ...(o.promptEmbeds ? { promptEmbeds: o.promptEmbeds } : {}),
        ...(o.matting ? { matting: o.matting } : {}),
        ...(o.mattingModel ? { mattingModel: o.mattingModel } : {}),
        faceDetector: o.detector,
        device: o.device,
        ...(o.threads ? { threads: o.threads } : {}),
        ...(o.fp16Unet ? { unetFp16Weights: true } : {}),
        ...(o.int8 ? { int8: true } : {}),
      }, onProgress);
      bars?.stop();
      for (const n of models.notices) process.stderr.write(`facelift: ${n}\n`);
      let outcomes: BatchOutcome[];
      try {
        outcomes = await runFolder(inputDir, {
          models, outputDir, autoCrop: o.autoCrop, seed: o.seed, guidanceScale, steps, turntableFrames: o.frames,
          ...scheduler,
          onImage: (item, i, n) => bars?.startImage(`[${i + 1}/${n}] ${basename(item.file)} `),
          onOutcome: (r) => {
            if (o.json) {
              process.stdout.write(`${JSON.stringify(r.ok ? { ok: true, file: r.file, name: r.name, ...r.result } : r)}\n`);
            } else if (r.ok) {
              const fb = r.result.preprocess.usedFallback ? ` (face crop fell back: ${r.result.preprocess.fallbackReason})` : '';
              process.stderr.write(`${basename(r.file)} → ${r.result.outDir} in ${secs(r.result.timings.total)}, ${r.result.gaussians.filtered} Gaussians${fb}\n`);
            } else {
              bars?.stop();
              process.stderr.write(`facelift: skipped ${basename(r.file)}: ${r.error}\n`);
            }
          },
        }, onProgress);
      } finally {
        bars?.stop();
        await models.close();
      }
      const failed = outcomes.filter((r) => !r.ok);
      if (!o.json) {
        process.stderr.write(`${outcomes.length - failed.length} of ${outcomes.length} image(s) done${failed.length ? `, ${failed.length} failed` : ''}; results in ${outputDir}\n`);
      }
      if (failed.length) process.exitCode = 1;
    });
}
