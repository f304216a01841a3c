/**
 * `facelift train vae`: config → the network (fresh, torch's default initialisation, or `init_from` a diffusers
 * `vae/` folder) → resume source (the newest readable `ckpt_*.pt` in the run folder) → FaceLift samples, one
 * sample's views per pass → VaeTrainStep → the shared Trainer (AdamW, cosine schedule with warm-up, clipping).
 * Run folder `output_dir`: `config.yaml`, `log.jsonl`, `curves.png`, `ckpt_*.pt`, `validation/pass_<n>.png`
 * (inputs over reconstructions) and at the end `vae/` (config.json + diffusion_pytorch_model.safetensors), the
 * component a `pipeckpts/` folder takes.
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { Graph, Session } from '../../core/index.ts';
import { paramSpecs } from '../../diffusion/params.ts';
import { VaeDecoder, VaeEncoder } from '../../diffusion/vae.ts';
import { declareVaeParams } from '../../diffusion/vae-params.ts';
import { loadWeights } from '../../diffusion/weights.ts';
import { planarToImage, vconcat, hconcat, writePng } from '../../io/image.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { UserError } from '../../util/errors.ts';
import { listCheckpoints, readCheckpoint, type LoadedCheckpoint } from '../checkpoint.ts';
import { applyOverrides, dumpYaml, readYamlTree } from '../config-tree.ts';
import { writeCurves } from '../curves.ts';
import { readSampleList } from '../gslrm/dataset.ts';
import { FixViewDataset } from '../mvdiffusion/dataset.ts';
import { psnr } from '../metrics.ts';
import { streamRng } from '../rng.ts';
import { initialParams } from '../init.ts';
import { paramGroups, Trainer, type LogRow, type RunOutcome } from '../trainer.ts';
import { parseVaeTrainConfig, type VaeTrainConfig } from './config.ts';
import { epsilonFor, VaeTrainStep, type VaeBatch } from './step.ts';

export interface TrainVaeOptions {
  config: string;
  sets?: readonly string[];
  resume?: boolean;
  /** Write `vae/` from the newest checkpoint and stop (no training). */
  exportOnly?: boolean;
  stopAfterMinutes?: number;
  threads?: number;
  say?: (line: string) => void;
  onLog?: (row: LogRow) => void;
  onPass?: (pass: number, total: number, row: { loss: number }) => void;
  stop?: () => boolean;
}

export interface TrainVaeResult extends RunOutcome {
  dir: string;
  totalPasses: number;
  /** The exported `vae/` folder (null when the run stopped early). */
  exported: string | null;
}

export async function trainVae(opts: TrainVaeOptions): Promise<TrainVaeResult> {
  const say = opts.say ?? ((l: string) => process.stderr.write(`${l}\n`));
  const tree = readYamlTree(opts.config);
  applyOverrides(tree, opts.sets ?? []);
  const { config: cfg, unknownKeys } = parseVaeTrainConfig(tree, opts.config);
  if (unknownKeys.length) say(`config: ignoring keys this trainer does not read: ${unknownKeys.join(', ')}`);
  mkdirSync(cfg.dir, { recursive: true });

  const specs = paramSpecs((d) => declareVaeParams(d, cfg.vae));
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  const params = cfg.initFrom
    ? ((await loadWeights(cfg.initFrom, specs, 'vae')) as Map<string, Float32Array>)
    : initialParams(specs, cfg.seed);
  const count = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  say(cfg.initFrom ? `fine-tuning the VAE of ${cfg.initFrom}` : `a new VAE (${count.toLocaleString('en-US')} params)`);
  const decay = (n: string) => ((shapes.get(n)?.length ?? 1) > 1 ? cfg.weightDecay : 0);
  const groups = paramGroups([...params.keys()], new Set(), decay);
  const start = await resumeSource(cfg.dir, groups, opts.resume ?? false, say);
  if (start) {
    for (const [k, v] of start.model) params.set(k, v);
    say(`resuming from ${start.path} (pass ${start.training?.fwdbwdPassStep ?? 0})`);
  }

  const threads = opts.threads ?? availableParallelism();
  const dsOpts = (background: VaeTrainConfig['background']) => ({
    views: cfg.views, imageSize: cfg.imageSize, referenceViews: [0], mouse: false,
    dataset: { path: '', background, augmentation: null },
  });
  const dataset = new FixViewDataset(readSampleList(cfg.train), dsOpts(cfg.background), cfg.seed, say);
  const exportNow = async () => {
    const json = await withScalingFactor(cfg, params, dataset, threads, say);
    const out = await exportVae(join(cfg.dir, 'vae'), json, params, shapes);
    say(`exported ${out} (scaling_factor ${json.scaling_factor})`);
    return out;
  };
  if (opts.exportOnly) {
    if (!start) throw new UserError(`--export-only: no ckpt_*.pt in ${cfg.dir} to export from`);
    const pass = start.training?.fwdbwdPassStep ?? 0;
    return { pass, stopped: false, checkpoint: start.path, dir: cfg.dir, totalPasses: 0, exported: await exportNow() };
  }
  const images = cfg.batchSize * cfg.views;
  const side = cfg.crop ?? cfg.imageSize;
  const step = await VaeTrainStep.create(cfg.vae, params, shapes, {
    images, size: side, weights: { kl: cfg.klWeight, mse: cfg.mseWeight }, seed: cfg.seed,
    weightDecay: cfg.weightDecay, threads,
  });
  const valData = cfg.val ? new FixViewDataset(readSampleList(cfg.val), dsOpts('white'), cfg.seed, say) : null;
  const data = {
    length: dataset.length,
    async load(indices: readonly number[], pass: number): Promise<VaeBatch> {
      const items = await Promise.all(indices.map((i, slot) => dataset.get(i, pass, slot)));
      const S = cfg.imageSize;
      const out = new Float32Array(images * 3 * side * side);
      const rng = streamRng(cfg.seed, 'vae-crop', pass);
      let k = 0;
      for (const it of items) {
        for (let v = 0; v < cfg.views; v++, k++) {
          // One random window per view (the same everywhere when not cropping).
          const y0 = side < S ? rng.int(S - side + 1) : 0,
            x0 = side < S ? rng.int(S - side + 1) : 0;
          for (let c = 0; c < 3; c++) {
            for (let y = 0; y < side; y++) {
              const src = ((v * 3 + c) * S + y0 + y) * S + x0;
              out.set(it.targets.subarray(src, src + side), ((k * 3 + c) * side + y) * side);
            }
          }
        }
      }
      return { images: out, count: images };
    },
  };
  writeFileSync(join(cfg.dir, 'config.yaml'), dumpYaml(cfg.tree));
  const logPath = join(cfg.dir, 'log.jsonl');
  writeFileSync(logPath, (start?.training?.history ?? []).map((r) => `${JSON.stringify(r)}\n`).join(''));

  const trainer: Trainer<VaeBatch> = new Trainer(
    step,
    data,
    {
      lr: cfg.lr,
      betas: cfg.betas,
      eps: cfg.eps,
      gradAccum: cfg.gradAccum,
      clipNorm: cfg.gradClip,
      allowedGradnormFactor: Infinity,
      batchSize: cfg.batchSize,
      numEpochs: Number.MAX_SAFE_INTEGER,
      maxPasses: cfg.maxPasses,
      totalPasses: cfg.maxPasses,
      warmup: cfg.warmup,
      checkpointEvery: cfg.checkpointEvery,
      printEvery: cfg.printEvery,
      visEvery: Number.MAX_SAFE_INTEGER,
      validateEvery: valData ? cfg.validateEvery : null,
      firstValidation: 'none',
      seed: cfg.seed,
      checkpointDir: cfg.dir,
      optimizerWorkers: 0,
    },
    {
      onPass: (pass, total, r) => opts.onPass?.(pass, total, { loss: r.loss }),
      onLog: async (row) => {
        appendFileSync(logPath, `${JSON.stringify(row)}\n`);
        opts.onLog?.(row);
        await writeCurves(join(cfg.dir, 'curves.png'), trainer.rows, [
          { key: 'loss', label: 'loss', log: true },
          { key: 'psnr', label: 'training PSNR (dB)' },
          { key: 'kl', label: 'KL', log: true },
        ]);
      },
      onValidate: async (pass) => {
        if (!valData) return;
        const picture = join(cfg.dir, 'validation', `pass_${String(pass).padStart(8, '0')}.png`);
        const r = await validateVae(cfg, params, valData, picture, threads);
        say(`validation at pass ${pass}: reconstruction PSNR ${r.psnr.toFixed(2)} dB over ${r.images} views ` +
          '(white background)');
        const row = JSON.stringify({ pass, psnr: r.psnr, images: r.images });
        appendFileSync(join(cfg.dir, 'validation.jsonl'), `${row}\n`);
      },
      onCheckpoint: (path) => say(`checkpoint ${path}`),
    },
    start?.training ?? null,
  );
  const budget = opts.stopAfterMinutes !== undefined ? Date.now() + opts.stopAfterMinutes * 60_000 : Infinity;
  try {
    const outcome = await trainer.run(() => (opts.stop?.() ?? false) || Date.now() >= budget);
    let exported: string | null = null;
    if (!outcome.stopped) exported = await exportNow();
    return { ...outcome, dir: cfg.dir, totalPasses: trainer.plan.totalPasses, exported };
  } finally {
    await trainer.close();
    await step.close();
  }
}

/**
 * The config.json to export: `scaling_factor` as the config gives it, else as Latent Diffusion chose SD's 0.18215 —
 * 1 / the standard deviation of posterior samples of training images (here the first 16 samples' views, white
 * background), so that scaled latents have unit variance, which the diffusion model's noise schedule assumes.
 */
async function withScalingFactor(
  cfg: VaeTrainConfig,
  params: Map<string, Float32Array>,
  data: FixViewDataset,
  threads: number,
  say: (l: string) => void,
): Promise<Record<string, unknown>> {
  const given = (cfg.tree.vae as Record<string, unknown>).scaling_factor;
  if (typeof given === 'number') return cfg.json;
  const S = cfg.imageSize,
    V = cfg.views;
  const g = new Graph('vae-latents');
  const e = new VaeEncoder(g, cfg.vae).forward(g.input('x', [V, 3, S, S]));
  const session = await Session.create({ mean: e.mean, std: e.std }, { params, threads });
  let sum = 0,
    sq = 0,
    n = 0;
  try {
    for (let i = 0; i < Math.min(16, data.length); i++) {
      const item = await data.get(i, 0, 0);
      const o = await session.run({ x: item.targets.map((v) => 2 * v - 1) });
      const mean = o.mean!.data as Float32Array,
        std = o.std!.data as Float32Array;
      const eps = epsilonFor(cfg.seed, -1 - i, mean.length);
      for (let k = 0; k < mean.length; k++) {
        const z = mean[k]! + std[k]! * eps[k]!;
        sum += z;
        sq += z * z;
        n++;
      }
    }
  } finally {
    await session.release();
  }
  const sd = Math.sqrt(Math.max(sq / n - (sum / n) ** 2, 1e-12));
  say(`latent standard deviation ${sd.toPrecision(4)} over ${n} values: scaling_factor ${(1 / sd).toPrecision(5)}`);
  return { ...cfg.json, scaling_factor: Number((1 / sd).toPrecision(5)) };
}

/** Writes a diffusers `vae/` folder (fp32 safetensors), atomically. */
export async function exportVae(
  out: string,
  json: Record<string, unknown>,
  params: ReadonlyMap<string, Float32Array>,
  shapes: ReadonlyMap<string, readonly number[]>,
): Promise<string> {
  const tmp = `${out}.partial`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, 'config.json'), `${JSON.stringify(json, null, 2)}\n`);
  await writeSafetensors(
    join(tmp, 'diffusion_pytorch_model.safetensors'),
    new Map([...params].map(([k, v]) => [k, { dtype: 'F32' as const, shape: shapes.get(k) ?? [v.length], data: v }])),
  );
  await rm(out, { recursive: true, force: true });
  await rename(tmp, out);
  return out;
}

/** Reconstructs the validation samples' views (posterior mean) and writes inputs over reconstructions. */
async function validateVae(
  cfg: VaeTrainConfig,
  params: Map<string, Float32Array>,
  data: FixViewDataset,
  picture: string,
  threads: number,
): Promise<{ psnr: number; images: number }> {
  const S = cfg.imageSize,
    V = cfg.views;
  const g = new Graph('vae-val');
  const x = g.input('x', [V, 3, S, S]);
  const recon = new VaeDecoder(g, cfg.vae).forward(new VaeEncoder(g, cfg.vae).forward(x).mean);
  const session = await Session.create({ recon }, { params, threads });
  const rows: Array<ReturnType<typeof planarToImage>> = [];
  let sum = 0,
    n = 0;
  try {
    for (let i = 0; i < Math.min(data.length, 8); i++) {
      const item = await data.get(i, 0, 0);
      const xs = item.targets.map((v) => 2 * v - 1);
      const r = (await session.run({ x: xs })).recon!.data as Float32Array;
      const y = r.map((v) => Math.min(1, Math.max(0, (v + 1) / 2)));
      for (let v = 0; v < V; v++) {
        const a = y.subarray(v * 3 * S * S, (v + 1) * 3 * S * S),
          b = item.targets.subarray(v * 3 * S * S, (v + 1) * 3 * S * S);
        sum += psnr(a, b);
        n++;
      }
      if (i < 2) {
        const views = (src: Float32Array) =>
          hconcat([...Array(V).keys()].map((v) => planarToImage(src.subarray(v * 3 * S * S, (v + 1) * 3 * S * S), S, S),
          ),
          );
        rows.push(views(item.targets), views(y));
      }
    }
  } finally {
    await session.release();
  }
  await mkdir(join(picture, '..'), { recursive: true });
  await writePng(picture, vconcat(rows));
  return { psnr: sum / Math.max(1, n), images: n };
}

async function resumeSource(
  dir: string,
  groups: ReturnType<typeof paramGroups>,
  resume: boolean,
  say: (l: string) => void,
): Promise<LoadedCheckpoint | null> {
  const own = listCheckpoints(dir);
  if (own.length === 0) {
    if (resume) throw new UserError(`--resume: no ckpt_*.pt in ${dir} to continue from`);
    return null;
  }
  for (const f of own) {
    try {
      return await readCheckpoint(f, groups);
    } catch (e) {
      const readable = e instanceof UserError || e instanceof RangeError;
      if (!readable && !(e instanceof Error && /zip|pickle|ENOENT/i.test(e.message))) throw e;
      say(`skipping unreadable checkpoint ${basename(f)}: ${(e as Error).message}`);
    }
  }
  if (existsSync(dir)) throw new UserError(`no readable checkpoint in ${dir}; move the folder away to start afresh`);
  return null;
}
