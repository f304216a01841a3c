/**
 * `facelift train gslrm`: config → resume source → dataset → GS-LRM TrainStep → Trainer, with the run folder
 * (the config's `checkpoint_dir`, as the reference): `config.yaml` (resolved), `curves.png`, `log.jsonl`,
 * `iter_XXXXXXXX/supervision_<uid>.png` every `vis_every` passes, checkpoints, and validation under
 * `validation.output_dir` (spec gslrm.md §8–9).
 *
 * Resume order (spec §8): (1) the newest readable checkpoint in `checkpoint_dir` (full state), (2) `--load F`,
 * (3) `resume_ckpt` (a folder's newest readable checkpoint or a file; with `reset_training_state` only the
 * weights, matched by name, and counters restart at 0). A named source that has no checkpoint is an error,
 * not a silent start from scratch.
 */
import { appendFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, basename } from 'node:path';
import { CUDA_MISSING, cudaAvailable, type Provider } from '../../core/index.ts';
import { gslrmParamSpec, checkStateDict, IGNORED_KEY_PREFIX } from '../../lrm/params.ts';
import { randomGslrmWeights } from '../../lrm/weights.ts';
import { UserError } from '../../util/errors.ts';
import { listCheckpoints, readCheckpoint, type LoadedCheckpoint, type ParamGroup } from '../checkpoint.ts';
import { applyOverrides, at, dumpYaml, readYamlTree } from '../config-tree.ts';
import { writeCurves } from '../curves.ts';
import { shareAll } from '../optim/pool.ts';
import { paramGroups, Trainer, type LogRow, type RunOutcome } from '../trainer.ts';
import { parseGslrmTrainConfig, type GslrmTrainConfig } from './config.ts';
import { RandomViewDataset, readSampleList, type ViewSample } from './dataset.ts';
import { frozenParams, GslrmTrainStep } from './step.ts';
import { validateGslrm } from './validate.ts';
import type { ImageLoss } from './losses.ts';
import { PerceptualLoss, vggSpec, vggWeightsFrom, vggWeightsFromMat } from './perceptual.ts';
import { SsimLoss } from './ssim-loss.ts';
import { loadLpipsWeights, LpipsLoss, LpipsMetric } from './lpips.ts';
import { writeSupervision } from './visuals.ts';

export interface TrainGslrmOptions {
  config: string;
  sets?: readonly string[];
  /** Require a checkpoint in checkpoint_dir to continue from. */
  resume?: boolean;
  /** A checkpoint to start from (full state when it has one). */
  load?: string;
  stopAfterMinutes?: number;
  threads?: number;
  chunk?: number;
  /** Where the network trains: 'cuda' needs onnxruntime-node's CUDA provider (default 'cpu'). */
  device?: Provider;
  /** LPIPS's weights (torchvision vgg16 + LPIPS v0.1 vgg.pth): the LPIPS loss and the validation metric. */
  lpips?: { vgg16: string; lin: string };
  /** MatConvNet's imagenet-vgg-verydeep-19.mat for the perceptual loss when the starting checkpoint lacks VGG-19. */
  vgg19?: string;
  /** Validation turntable frames (0: none). */
  turntableFrames?: number;
  /** Validation samples that get a turntable (the first ones; default all). */
  turntableSamples?: number;
  /** Human-readable messages (stderr). */
  say?: (line: string) => void;
  /** One JSON line per logged step. */
  onLog?: (row: LogRow) => void;
  onPass?: (pass: number, total: number, row: { loss: number; psnr: number }) => void;
  /** Checked after every pass (signals). */
  stop?: () => boolean;
}

export interface TrainGslrmResult extends RunOutcome {
  dir: string;
  totalPasses: number;
  startedAt: number;
}

export async function trainGslrm(opts: TrainGslrmOptions): Promise<TrainGslrmResult> {
  const say = opts.say ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (opts.device === 'cuda' && !cudaAvailable()) {
    throw new UserError(CUDA_MISSING);
  }
  const tree = readYamlTree(opts.config);
  applyOverrides(tree, opts.sets ?? []);
  const { config: cfg, unknownKeys, notes } = parseGslrmTrainConfig(tree, opts.config);
  if (unknownKeys.length) say(`config: ignoring keys this trainer does not read: ${unknownKeys.join(', ')}`);
  for (const n of notes) say(`config: ${n}; ignored`);
  const dir = cfg.checkpointing.dir;
  mkdirSync(dir, { recursive: true });
  // A run killed while writing leaves its temporary file; the renamed checkpoints are whole.
  for (const f of readdirSync(dir)) if (/^ckpt_\d+\.pt\.tmp-\d+$/.test(f)) rmSync(join(dir, f), { force: true });

  const spec = gslrmParamSpec(cfg.model);
  const params = randomGslrmWeights(cfg.model, cfg.seed);
  const shapes = new Map(spec.map((s) => [s.key, s.shape]));
  const groups = paramGroups([...params.keys()], frozenParams(cfg), (n) =>
    (shapes.get(n)?.length ?? 1) >= 2 ? cfg.optimizer.weightDecay : 0,
  );
  const start = await resumeSource(cfg, opts, groups, say);
  let resume: LoadedCheckpoint['training'] = null;
  if (start) {
    const full = start.kind === 'full' && start.ckpt.training !== null;
    if (full || !cfg.optimizer.resetTrainingState) checkStateDict(spec, start.ckpt.shapes, basename(start.ckpt.path));
    let loaded = 0;
    for (const [k, v] of start.ckpt.model) {
      if (k.startsWith(IGNORED_KEY_PREFIX) || !params.has(k)) continue;
      if (v.length !== params.get(k)!.length)
        throw new UserError(
          `${basename(start.ckpt.path)}: ${k} has ${v.length} values, the config's model needs ${params.get(k)!.length}`,
        );
      params.set(k, v);
      loaded++;
    }
    if (full) resume = start.ckpt.training;
    say(
      `${full ? 'resuming from' : 'initialising weights from'} ${start.ckpt.path} (${loaded} of ${spec.length} tensors${full ? `, pass ${resume!.fwdbwdPassStep}` : ''})`,
    );
  } else {
    say(`starting from random weights (seed ${cfg.seed})`);
  }

  if (at(cfg.tree, 'training.dataset.dataset_path') === 'placeholder') {
    // The official stage I/II configs name no data: FaceLift pre-trains on Objaverse renders it does not ship.
    throw new UserError(
      `${opts.config}: training.dataset.dataset_path is "placeholder" (the official pre-training stages ` +
        'train on Objaverse renders FaceLift does not ship); give a list of sample folders with --set training.dataset.dataset_path=LIST',
    );
  }
  const samples = readSampleList(cfg.dataset.path);
  const dataset = new RandomViewDataset(
    samples,
    {
      imageSize: cfg.model.image_tokenizer.image_size,
      numViews: cfg.dataset.numViews,
      numInputViews: cfg.dataset.numInputViews,
      inputViews: cfg.dataset.inputViews,
      maximizeOverlap: cfg.dataset.maximizeOverlap,
      background: cfg.dataset.background,
      removeAlpha: cfg.dataset.removeAlpha,
      mouse: cfg.mouse,
    },
    cfg.seed,
    say,
  );
  const data = {
    length: dataset.length,
    load: (indices: readonly number[], pass: number): Promise<ViewSample[]> =>
      Promise.all(indices.map((i, slot) => dataset.get(i, pass, slot))),
  };

  // The perceptual loss's VGG-19 comes from the starting checkpoint (the reference saves it there) and is saved on.
  const imageLosses: ImageLoss[] = [];
  if (cfg.losses.perceptual > 0) {
    const mat = opts.vgg19 ?? process.env.VGG19_WEIGHTS_PATH;
    const inCkpt = start !== null && vggSpec().every((v) => start.ckpt.model.has(v.key));
    const vgg =
      !inCkpt && mat
        ? vggWeightsFromMat(mat)
        : vggWeightsFrom(
            start?.ckpt.model ?? new Map(),
            start ? basename(start.ckpt.path) : 'a run from random weights',
          );
    for (const [k, v] of vgg) params.set(k, v);
    imageLosses.push(
      await PerceptualLoss.create(vgg, cfg.dataset.numViews, cfg.model.image_tokenizer.image_size, opts.threads),
    );
  }

  const S = cfg.model.image_tokenizer.image_size;
  if (cfg.losses.ssim > 0)
    imageLosses.push(await SsimLoss.create(cfg.dataset.numViews, S, cfg.losses.maskedSsim, opts.threads));
  // LPIPS (loss when its weight is > 0, validation metric whenever its weights are given).
  const lpipsFiles = opts.lpips ?? lpipsFromEnv();
  const lpips = lpipsFiles ? await loadLpipsWeights(lpipsFiles.vgg16, lpipsFiles.lin) : null;
  if (cfg.losses.lpips > 0) {
    if (!lpips) {
      throw new UserError(
        `training.losses.lpips_loss_weight is ${cfg.losses.lpips}, which needs LPIPS's weights: give torchvision's vgg16 ` +
          '(vgg16-397923af.pth) and LPIPS v0.1 vgg.pth with --lpips-vgg16 F --lpips-lin F, or set the weight to 0',
      );
    }
    imageLosses.push(await LpipsLoss.create(lpips, cfg.dataset.numViews, S, opts.threads));
  }

  writeFileSync(join(dir, 'config.yaml'), dumpYaml(cfg.tree));
  // The optimizer's loops use the same threads as the network: parameters move into shared buffers for them
  // before any session takes views of them.
  const optimizerWorkers = Math.max(0, (opts.threads ?? availableParallelism()) - 1);
  if (optimizerWorkers) shareAll(params);
  const step = await GslrmTrainStep.create(cfg, params, {
    ...(opts.threads ? { threads: opts.threads } : {}),
    ...(opts.chunk ? { chunk: opts.chunk } : {}),
    ...(opts.device ? { provider: opts.device } : {}),
    imageLosses,
  });
  const logPath = join(dir, 'log.jsonl');
  writeFileSync(logPath, (resume?.history ?? []).map((r) => `${JSON.stringify(r)}\n`).join(''));
  const valOut = join(dir, 'validation');
  const lpipsMetric =
    lpips && cfg.validation.enabled ? await LpipsMetric.create(lpips, cfg.dataset.numViews, S, opts.threads) : null;
  const validation =
    cfg.validation.enabled && cfg.validation.datasetPath
      ? { samples: readSampleList(cfg.validation.datasetPath), out: valOut }
      : null;

  const trainer: Trainer<ViewSample[]> = new Trainer(
    step,
    data,
    {
      lr: cfg.optimizer.lr,
      betas: cfg.optimizer.betas,
      gradAccum: cfg.runtime.gradAccum,
      clipNorm: cfg.runtime.clipNorm,
      allowedGradnormFactor: cfg.runtime.allowedGradnormFactor,
      batchSize: cfg.batchSize,
      numEpochs: cfg.schedule.numEpochs,
      maxPasses: cfg.schedule.maxPasses,
      warmup: cfg.schedule.warmup,
      checkpointEvery: cfg.checkpointing.every,
      printEvery: cfg.logging.printEvery,
      visEvery: cfg.logging.visEvery,
      validateEvery: validation ? cfg.validation.every : null,
      seed: cfg.seed,
      checkpointDir: dir,
      moments: cfg.optimizer.use8bit ? '8bit' : 'fp32',
      optimizerWorkers,
    },
    {
      onPass: (pass, total, r) => opts.onPass?.(pass, total, { loss: r.loss, psnr: r.metrics.psnr ?? NaN }),
      onLog: async (row) => {
        appendFileSync(logPath, `${JSON.stringify(row)}\n`);
        opts.onLog?.(row);
        await writeCurves(join(dir, 'curves.png'), trainer.rows, [
          { key: 'loss', label: 'loss', log: true },
          { key: 'psnr', label: 'PSNR (dB)' },
          { key: 'grad_norm', label: 'grad norm', log: true },
        ]);
      },
      onVisual: async (pass) => {
        if (step.lastSupervision) await writeSupervision(join(dir, iterName(pass)), step.lastSupervision);
      },
      onValidate: async (pass) => {
        if (!validation) return;
        const r = await validateGslrm(step, cfg, validation.samples, join(validation.out, iterName(pass)), {
          turntableFrames: opts.turntableFrames ?? 0,
          ...(opts.turntableSamples !== undefined ? { turntableSamples: opts.turntableSamples } : {}),
          ...(lpipsMetric ? { lpips: lpipsMetric } : {}),
          say,
        });
        const lp = r.lpips === null ? 'n/a (no LPIPS weights given)' : r.lpips.toFixed(4);
        say(
          `validation at pass ${pass}: PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(4)}, LPIPS ${lp} over ${r.samples} sample(s)`,
        );
      },
      onCheckpoint: (path) => say(`checkpoint ${path}`),
    },
    resume,
  );
  const startedAt = Date.now();
  const budget = opts.stopAfterMinutes !== undefined ? startedAt + opts.stopAfterMinutes * 60_000 : Infinity;
  try {
    const outcome = await trainer.run(() => (opts.stop?.() ?? false) || Date.now() >= budget);
    return { ...outcome, dir, totalPasses: trainer.plan.totalPasses, startedAt };
  } finally {
    await trainer.close();
    await step.close();
    await lpipsMetric?.release();
  }
}

export const iterName = (pass: number): string => `iter_${String(pass).padStart(8, '0')}`;

type Start = { kind: 'full' | 'weights'; ckpt: LoadedCheckpoint };

async function resumeSource(
  cfg: GslrmTrainConfig,
  opts: TrainGslrmOptions,
  groups: readonly ParamGroup[],
  say: (l: string) => void,
): Promise<Start | null> {
  const own = listCheckpoints(cfg.checkpointing.dir);
  if (own.length) return { kind: 'full', ckpt: await firstReadable(own, groups, say) };
  if (opts.resume) throw new UserError(`--resume: no ckpt_*.pt in ${cfg.checkpointing.dir} to continue from`);
  if (opts.load) return { kind: 'full', ckpt: await firstReadable([opts.load], groups, say) };
  const rc = cfg.checkpointing.resumeCkpt;
  if (!rc) return null;
  let files: string[];
  try {
    files = statSync(rc).isDirectory() ? listCheckpoints(rc) : [rc];
  } catch {
    files = [];
  }
  if (files.length === 0) {
    throw new UserError(
      `training.checkpointing.resume_ckpt is ${rc}, but there is no checkpoint there (train the previous stage first, ` +
        'or start from scratch with --set training.checkpointing.resume_ckpt=null)',
    );
  }
  return { kind: cfg.optimizer.resetTrainingState ? 'weights' : 'full', ckpt: await firstReadable(files, groups, say) };
}

/** The newest checkpoint that reads; unreadable ones are reported and skipped (a torn write, a full disk). */
async function firstReadable(
  files: readonly string[],
  groups: readonly ParamGroup[],
  say: (l: string) => void,
): Promise<LoadedCheckpoint> {
  const problems: string[] = [];
  for (const f of files) {
    try {
      return await readCheckpoint(f, groups);
    } catch (e) {
      if (
        !(e instanceof UserError) &&
        !(e instanceof RangeError) &&
        !(e instanceof Error && /zip|pickle|ENOENT/i.test(e.message))
      )
        throw e;
      problems.push(`${basename(f)}: ${(e as Error).message}`);
      say(`skipping unreadable checkpoint ${f}: ${(e as Error).message}`);
    }
  }
  throw new UserError(`no readable checkpoint (${problems.join('; ')})`);
}

function lpipsFromEnv(): { vgg16: string; lin: string } | null {
  const vgg16 = process.env.LPIPS_VGG16_WEIGHTS,
    lin = process.env.LPIPS_LIN_WEIGHTS;
  return vgg16 && lin ? { vgg16, lin } : null;
}
