/**
 * `facelift train mvdiffusion`: config → starting UNet (a FaceLift pipeline or an SD-2.1-unCLIP base) → resume
 * source → FixViewDataset → MV-diffusion TrainStep → the shared Trainer (AdamW or 8-bit AdamW, piecewise-constant
 * LR, clipping, accumulation, EMA), with the run folder `<checkpoint_prefix>/<output_dir>`: `config.yaml`
 * (resolved), `log.jsonl`, `curves.png`, `checkpoint-<n>/` folders, validation pictures under `val_out_dir`, and at
 * the end `pipeckpts/` with the EMA weights.
 *
 * Resume (`resume_from_checkpoint`): `latest` continues from the newest readable `checkpoint-<n>` in the output
 * folder (none yet: a new run, as the reference); a named checkpoint must exist.
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { CUDA_MISSING, cudaAvailable, type Provider } from '../../core/index.ts';
import { MvDiffusionPipeline } from '../../diffusion/pipeline.ts';
import { UserError } from '../../util/errors.ts';
import { applyOverrides, dumpYaml, readYamlTree } from '../config-tree.ts';
import { writeCurves } from '../curves.ts';
import { readSampleList } from '../gslrm/dataset.ts';
import { loadLpipsWeights, LpipsMetric } from '../gslrm/lpips.ts';
import { Ema } from '../optim/ema.ts';
import { shareAll } from '../optim/pool.ts';
import { Trainer, type LogRow, type RunOutcome } from '../trainer.ts';
import {
  listMvCheckpoints,
  MvCheckpointStore,
  readMvCheckpoint,
  removePartialCheckpoints,
  type LoadedMvCheckpoint,
} from './checkpoint.ts';
import { parseMvTrainConfig, type MvTrainConfig } from './config.ts';
import { FixViewDataset, type MvItem } from './dataset.ts';
import { exportPipeline } from './export.ts';
import { piecewiseConstant } from './numerics.ts';
import { MvDiffusionTrainStep } from './step.ts';
import { initialUnet } from './unet-init.ts';
import { validateMv } from './validate.ts';

export interface TrainMvOptions {
  config: string;
  sets?: readonly string[];
  /** Require a checkpoint to continue from. */
  resume?: boolean;
  stopAfterMinutes?: number;
  threads?: number;
  /**
   * Optimizer worker threads (default threads − 1). Workers need the weights in shared memory, which onnxruntime
   * cannot read, so every session then reads a private copy of them (3.5 GB for the official UNet); 0 saves that.
   */
  optimizerWorkers?: number;
  chunk?: number;
  device?: Provider;
  /** Write `pipeckpts/` from the newest checkpoint and stop (no training). */
  exportOnly?: boolean;
  lpips?: { vgg16: string; lin: string };
  say?: (line: string) => void;
  onLog?: (row: LogRow) => void;
  onPass?: (pass: number, total: number, row: { loss: number }) => void;
  stop?: () => boolean;
}

export interface TrainMvResult extends RunOutcome {
  dir: string;
  totalPasses: number;
  exported: string | null;
}

export async function trainMvDiffusion(opts: TrainMvOptions): Promise<TrainMvResult> {
  const say = opts.say ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (opts.device === 'cuda' && !cudaAvailable()) {
    throw new UserError(CUDA_MISSING);
  }
  const tree = readYamlTree(opts.config);
  applyOverrides(tree, opts.sets ?? []);
  const { config: cfg, unknownKeys } = parseMvTrainConfig(tree, opts.config);
  if (unknownKeys.length) say(`config: ignoring keys this trainer does not read: ${unknownKeys.join(', ')}`);
  if (!existsSync(join(cfg.pretrained, 'model_index.json'))) {
    throw new UserError(
      `pretrained_model_name_or_path ${cfg.pretrained} is not a diffusers pipeline folder (no model_index.json): ` +
        "give FaceLift's mvdiffusion/pipeckpts (`facelift weights download`) or a Stable Diffusion 2.1 unCLIP folder",
    );
  }
  const dir = cfg.modelDir;
  mkdirSync(dir, { recursive: true });
  removePartialCheckpoints(dir);

  const unetDir = cfg.tree.pretrained_unet_path ? String(cfg.tree.pretrained_unet_path) : join(cfg.pretrained, 'unet');
  const init = await initialUnet(cfg, unetDir, say);
  const { params, shapes } = init;
  const names = [...params.keys()];
  const start = await resumeSource(cfg, opts, names, say);
  if (start) {
    for (const [k, v] of start.model) params.set(k, v);
    say(
      `resuming from ${start.path} (update ${start.training.paramUpdateStep}, pass ${start.training.fwdbwdPassStep})`,
    );
  }
  const ema = cfg.useEma ? (start?.ema ?? Ema.of(params, names)) : null;
  if (opts.exportOnly) {
    if (!start) throw new UserError(`--export-only: no checkpoint-<n> in ${dir} to export from`);
    const out = await exportPipeline(cfg.pretrained, join(dir, 'pipeckpts'), init.json, ema?.shadow ?? params, shapes,
      trainedEmbeds(cfg));
    say(`exported ${out} (${ema ? 'EMA' : 'trained'} weights of ${basename(start.path)})`);
    return {
      pass: start.training.fwdbwdPassStep,
      stopped: false,
      checkpoint: start.path,
      dir,
      totalPasses: 0,
      exported: out,
    };
  }

  const threads = opts.threads ?? availableParallelism();
  const optimizerWorkers = opts.optimizerWorkers ?? Math.max(0, threads - 1);
  if (optimizerWorkers) shareAll(params);
  const promptEmbeds = trainedEmbeds(cfg);
  if (cfg.promptEmbedPath && !promptEmbeds)
    say(
      `prompt_embed_path ${cfg.promptEmbedPath} does not exist; computing the prompt embeddings with the pipeline's text encoder`,
    );
  const pipe = await MvDiffusionPipeline.load(cfg.pretrained, {
    unet: { config: init.config, weights: ema?.shadow ?? params },
    ...(promptEmbeds ? { promptEmbeds } : { cacheDir: join(dir, 'cache') }),
    threads,
  });
  const datasetOpts = (d: MvTrainConfig['train'], refs: readonly number[]) => ({
    views: cfg.views,
    imageSize: cfg.imageSize,
    dataset: d,
    referenceViews: refs,
    mouse: cfg.datasetType === 'mouse',
  });
  const dataset = new FixViewDataset(
    readSampleList(cfg.train.path),
    datasetOpts(cfg.train, cfg.referenceViews),
    cfg.seed,
    say,
  );
  const valData = cfg.validation
    ? new FixViewDataset(
        readSampleList(cfg.validation.path),
        datasetOpts(cfg.validation, [cfg.referenceViews[0]!]),
        cfg.seed,
        say,
      )
    : null;
  const step = await MvDiffusionTrainStep.create(cfg, pipe, init.config, params, shapes, {
    threads,
    ...(opts.chunk ? { chunk: opts.chunk } : {}),
    ...(opts.device ? { provider: opts.device } : {}),
  });
  writeFileSync(join(dir, 'config.yaml'), dumpYaml(cfg.tree));
  const logPath = join(dir, 'log.jsonl');
  writeFileSync(logPath, (start?.training.history ?? []).map((r) => `${JSON.stringify(r)}\n`).join(''));
  const lpipsFiles = opts.lpips ?? lpipsFromEnv();
  const lpips =
    lpipsFiles && valData
      ? await LpipsMetric.create(
          await loadLpipsWeights(lpipsFiles.vgg16, lpipsFiles.lin),
          cfg.views,
          cfg.imageSize,
          threads,
        )
      : null;
  const data = {
    length: dataset.length,
    load: (indices: readonly number[], pass: number): Promise<MvItem[]> =>
      Promise.all(indices.map((i, slot) => dataset.get(i, pass, slot))),
  };
  const A = cfg.gradAccum;
  const trainer: Trainer<MvItem[]> = new Trainer(
    step,
    data,
    {
      lr: cfg.lr,
      betas: cfg.betas,
      eps: cfg.eps,
      gradAccum: A,
      clipNorm: cfg.maxGradNorm ?? Infinity,
      allowedGradnormFactor: Infinity,
      batchSize: cfg.batchSize,
      numEpochs: Number.MAX_SAFE_INTEGER,
      maxPasses: cfg.maxTrainSteps * A,
      totalPasses: cfg.maxTrainSteps * A,
      warmup: 0,
      checkpointEvery: cfg.checkpointingSteps * A,
      printEvery: A,
      visEvery: Number.MAX_SAFE_INTEGER,
      validateEvery: valData ? cfg.validationSteps * A : null,
      firstValidation: cfg.validationSanityCheck ? 'first-update' : 'none',
      seed: cfg.seed,
      checkpointDir: dir,
      moments: cfg.use8bitAdam ? '8bit' : 'fp32',
      optimizerWorkers,
      schedule: piecewiseConstant(cfg.stepRules),
      store: new MvCheckpointStore(dir, init.json, cfg.checkpointsTotalLimit, say),
      ...(ema ? { ema } : {}),
    },
    {
      onPass: (pass, total, r) => opts.onPass?.(pass, total, { loss: r.loss }),
      onLog: async (row) => {
        appendFileSync(logPath, `${JSON.stringify(row)}\n`);
        opts.onLog?.(row);
        await writeCurves(join(dir, 'curves.png'), trainer.rows, [
          { key: 'loss', label: 'loss (min-SNR weighted)', log: true },
          { key: 'mse', label: 'MSE', log: true },
          { key: 'grad_norm', label: 'grad norm', log: true },
        ]);
      },
      onValidate: async (pass) => {
        if (!valData) return;
        const update = Math.floor(pass / A);
        const sanity = pass === A && cfg.validationSanityCheck && update % cfg.validationSteps !== 0;
        const r = await validateMv(pipe, cfg, valData, cfg.valOutDir, update, {
          ...(lpips ? { lpips } : {}),
          ...(sanity ? { maxSamples: cfg.validationBatchSize } : {}),
        });
        for (const s of r.scores) {
          say(
            `validation at update ${update}, guidance ${s.guidance}: PSNR ${s.psnr.toFixed(2)} dB, SSIM ${s.ssim.toFixed(4)}, ` +
              `LPIPS ${s.lpips === null ? 'n/a (no LPIPS weights given)' : s.lpips.toFixed(4)} over ${r.samples} sample(s)`,
          );
        }
      },
      onCheckpoint: (path) => say(`checkpoint ${path}`),
    },
    start?.training ?? null,
  );
  const budget = opts.stopAfterMinutes !== undefined ? Date.now() + opts.stopAfterMinutes * 60_000 : Infinity;
  let exported: string | null = null;
  try {
    const outcome = await trainer.run(() => (opts.stop?.() ?? false) || Date.now() >= budget);
    if (!outcome.stopped) {
      exported = await exportPipeline(cfg.pretrained, join(dir, 'pipeckpts'), init.json, ema?.shadow ?? params, shapes,
        trainedEmbeds(cfg));
      say(`exported ${exported} (${ema ? 'EMA' : 'trained'} weights)`);
    }
    if (step.cacheHits) say(`encoder cache: ${step.cacheHits} sample encodings reused`);
    return { ...outcome, dir, totalPasses: trainer.plan.totalPasses, exported };
  } finally {
    await trainer.close();
    await step.close();
    await pipe.close();
    await lpips?.release();
  }
}

async function resumeSource(
  cfg: MvTrainConfig,
  opts: TrainMvOptions,
  names: readonly string[],
  say: (l: string) => void,
): Promise<LoadedMvCheckpoint | null> {
  const want = cfg.resumeFromCheckpoint;
  let candidates: string[];
  if (want === null || want === '') candidates = opts.resume || opts.exportOnly ? listMvCheckpoints(cfg.modelDir) : [];
  else if (want === 'latest') candidates = listMvCheckpoints(cfg.modelDir);
  else {
    const path = isAbsolute(want) ? want : join(cfg.modelDir, basename(want));
    if (!existsSync(path))
      throw new UserError(
        `resume_from_checkpoint ${want}: there is no ${path} (use latest, null, or an existing checkpoint-<n>)`,
      );
    candidates = [path];
  }
  if (candidates.length === 0) {
    if (opts.resume) throw new UserError(`--resume: no checkpoint-<n> in ${cfg.modelDir} to continue from`);
    if (want === 'latest') say(`no checkpoint in ${cfg.modelDir} yet; starting a new run`);
    return null;
  }
  const problems: string[] = [];
  for (const c of candidates) {
    try {
      return await readMvCheckpoint(c, names);
    } catch (e) {
      if (
        !(e instanceof UserError) &&
        !(e instanceof RangeError) &&
        !(e instanceof Error && /zip|pickle|ENOENT|safetensors/i.test(e.message))
      )
        throw e;
      problems.push(`${basename(c)}: ${(e as Error).message}`);
      say(`skipping unreadable checkpoint ${c}: ${(e as Error).message}`);
    }
  }
  throw new UserError(`no readable checkpoint (${problems.join('; ')})`);
}

function lpipsFromEnv(): { vgg16: string; lin: string } | null {
  const vgg16 = process.env.LPIPS_VGG16_WEIGHTS,
    lin = process.env.LPIPS_LIN_WEIGHTS;
  return vgg16 && lin ? { vgg16, lin } : null;
}

/** The prompt-embeddings file the run conditions on, when it names one that exists (else the text encoder's). */
function trainedEmbeds(cfg: MvTrainConfig): string | undefined {
  return cfg.promptEmbedPath && existsSync(cfg.promptEmbedPath) ? cfg.promptEmbedPath : undefined;
}
