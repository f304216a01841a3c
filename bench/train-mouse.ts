/**
 * `npm run bench -- train-mouse [--updates 3] [--moments config,8bit] [--threads 2] [--optimizer-workers N]
 *   [--size 256|512]`
 *
 * The mouse fork's low-memory multi-view diffusion fine-tune (configs/mouse_mvdiffusion_lowmem.yaml: the official
 * 870 M UNet at 256², 1 object × 6 views, EMA, gradient checkpointing) through the real `facelift train
 * mvdiffusion` at full size, on this CPU: a pipeline of the official shapes (UNet, VAE and the 632 M CLIP image
 * encoder with random weights; fixed [6, 77, 1024] prompt embeddings in place of the text encoder, which training
 * only uses once) and samples from `mouse convert` of the procedural test recording. Each run is its own process,
 * so its peak RSS is its own: the config as shipped (fp32 moments), and with `use_8bit_adam`. Gradient accumulation
 * is set to 1 so each update is one forward/backward (peak memory does not depend on it; an update of the config's
 * 8 passes costs 8 × the pass). `--optimizer-workers 0` keeps the weights out of shared memory (no private copy per
 * session). `--size 512` trains the same config at FaceLift's own 512² (`img_wh` and the UNet's sample size set;
 * samples converted at 512²): the whole trainer at the official size. The GS-LRM's lowmem config is measured by
 * `train-full --only stage --stages mouse`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { numberArg } from './args.ts';
import type { BenchRun } from './figure.ts';

const GOLDEN = new URL('../../shared/golden/', import.meta.url).pathname;
const CONFIG = fileURLToPath(new URL('../configs/mouse_mvdiffusion_lowmem.yaml', import.meta.url));

interface TrainResult {
  update_s: number[];
  optimizer_s: number[];
  peak_rss_mib: number;
  params: number;
}

/** The 512² runs get their own BENCHMARKS.md section beside the config's 256². */
export function section(args: string[]): string {
  const i = args.indexOf('--size');
  return i >= 0 && args[i + 1] !== '256' ? `train-mouse (${args[i + 1]}²)` : 'train-mouse';
}

export const run: BenchRun = async function* (args) {
  const threads = numberArg(args, 'threads', 2);
  const updates = numberArg(args, 'updates', 3);
  const size = numberArg(args, 'size', 256);
  if (size !== 256 && size !== 512) throw new Error('--size is 256 (the config\'s) or 512 (FaceLift\'s)');
  const variants = (args.includes('--moments') ? args[args.indexOf('--moments') + 1]! : 'config,8bit').split(',');
  const wi = args.indexOf('--optimizer-workers');
  const workers = wi >= 0 ? Number(args[wi + 1]) : threads - 1;
  if (!(Number.isInteger(workers) && workers >= 0)) throw new Error('--optimizer-workers needs a whole number ≥ 0');
  const root = mkdtempSync(join(tmpdir(), 'bench-train-mouse-'));
  try {
    const setup = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child',
      JSON.stringify({ part: 'setup', root, size })], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (setup.status !== 0) throw new Error('setup failed');
    for (const v of variants) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child',
        JSON.stringify({ part: 'train', root, moments: v, updates, threads, workers, size })],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
      const moments = v === 'config' ? 'fp32 moments (as shipped)' : '8-bit moments (use_8bit_adam)';
      const tag = `mouse_mvdiffusion_lowmem.yaml (870 M UNet, ${size}², 1 × 6 views), ${moments}, ` +
        `${workers} optimizer worker(s)`;
      const line = r.stdout.trim().split('\n').at(-1) ?? '';
      if (r.status !== 0 || !line.startsWith('{')) {
        yield {
          name: `${tag}: did not fit`, value: totalmem() / 2 ** 30, unit: 'GiB',
          note: `the run ended with ${r.signal ?? `status ${r.status}`} before ${updates} updates (the kernel's OOM ` +
            "killer, when SIGKILL); the value is the machine's memory",
        };
        continue;
      }
      const t = JSON.parse(line) as TrainResult;
      const sorted = [...t.update_s].sort((a, b) => a - b);
      yield { name: `${tag}: peak RSS`, value: t.peak_rss_mib / 1024, unit: 'GiB', higherIsBetter: false,
        note: `${updates} updates + the final checkpoint and export; whole trainer process; limit 24 GiB` };
      yield { name: `${tag}: seconds per update`, value: sorted[Math.floor(sorted.length / 2)]!, unit: 's',
        higherIsBetter: false,
        note: `median of ${t.update_s.length}: ${t.update_s.map((s) => s.toFixed(0)).join(', ')} s` +
          ` (encoders, UNet fwd+bwd with recomputation, AdamW, EMA; ${threads} threads)` };
      const share = t.optimizer_s.map((o, i) => o / t.update_s[i]!).sort((a, b) => a - b);
      yield { name: `${tag}: optimizer share of an update`, value: 100 * share[Math.floor(share.length / 2)]!,
        unit: '%', higherIsBetter: false,
        note: `median; norm + 8-bit/fp32 AdamW per update: ${t.optimizer_s.map((s) => s.toFixed(1)).join(', ')} s` };
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
};

/** An official-shaped pipeline (random weights) and `size`² mouse samples, under `root`. */
async function setupChild(root: string, size: number): Promise<void> {
  await writeOfficialShapedPipeline(root, size);
  const { writeRawRecording } = await import('../src/mouse/testing/raw-recording.ts');
  const { convertRecording } = await import('../src/mouse/convert.ts');
  await writeRawRecording(join(root, 'raw'), 6);
  await convertRecording({ inputDir: join(root, 'raw'), outputDir: join(root, 'data'), frameInterval: 2,
    targetSize: size });
}

/**
 * `root/pipeckpts`: FaceLift's UNet, CLIP ViT-H/14 image encoder and VAE at their official shapes
 * (../shared/golden/official-keys) with random weights, fixed [6, 77, 1024] prompt embeddings (clr_embeds.pt) in
 * place of the text encoder, views of `size`².
 */
export async function writeOfficialShapedPipeline(root: string, size: number): Promise<string> {
  const { readFileSync, writeFileSync } = await import('node:fs');
  const { parseVaeConfig } = await import('../src/diffusion/config.ts');
  const { JsonFields } = await import('../src/diffusion/json-fields.ts');
  const { paramSpecs } = await import('../src/diffusion/params.ts');
  const { declareVaeParams } = await import('../src/diffusion/vae-params.ts');
  const { writeModelFolder } = await import('../src/train/mvdiffusion/checkpoint.ts');
  const { initialParams } = await import('../src/train/init.ts');
  const { writeNewPipeline } = await import('../src/train/demo/new-pipeline.ts');
  const vaeConfig = join(GOLDEN, 'official-keys/vae_config.json');
  const specs = paramSpecs((d) => declareVaeParams(d, parseVaeConfig(JsonFields.fromFile(vaeConfig))));
  const vae = initialParams(specs, 1);
  await writeModelFolder(join(root, 'vae'), JSON.parse(readFileSync(vaeConfig, 'utf8')) as Record<string, unknown>,
    specs.map((s) => ({ name: s.name, shape: s.shape, data: vae.get(s.name)! })));
  const recipe = join(root, 'recipe.yaml');
  writeFileSync(recipe, `seed: 1
image_size: ${size}
prompt_tokens: 77
unet: { block_out_channels: [320, 640, 1280, 1280], attention_head_dim: [5, 10, 20, 20], layers_per_block: 2,
  cross_attention_dim: 1024, norm_num_groups: 32 }
image_encoder: { hidden_size: 1280, intermediate_size: 5120, num_hidden_layers: 32, num_attention_heads: 16,
  image_size: 224, patch_size: 14, projection_dim: 1024 }
`);
  await writeNewPipeline(recipe, join(root, 'vae'), join(root, 'pipeckpts'));
  return join(root, 'pipeckpts');
}

async function trainChild(root: string, moments: string, updates: number, threads: number, workers: number,
  size: number): Promise<void> {
  const { trainMvDiffusion } = await import('../src/train/mvdiffusion/run.ts');
  const { MomentAdamW } = await import('../src/train/optim/adamw.ts');
  // The optimizer's share: time spent in its norm and update calls, summed per update (bench-only wrappers).
  let inOptimizer = 0;
  const timed = <K extends 'step' | 'cleanAndSumSquares'>(k: K) => {
    const f = MomentAdamW.prototype[k] as (...a: unknown[]) => Promise<unknown>;
    (MomentAdamW.prototype as unknown as Record<K, unknown>)[k] = async function (this: unknown, ...a: unknown[]) {
      const t = performance.now();
      try {
        return await f.apply(this, a);
      } finally {
        inOptimizer += performance.now() - t;
      }
    };
  };
  timed('step');
  timed('cleanAndSumSquares');
  const times: number[] = [],
    optimizer: number[] = [];
  let last = 0,
    lastOpt = 0;
  await trainMvDiffusion({
    config: CONFIG,
    sets: [
      `pretrained_model_name_or_path=${join(root, 'pipeckpts')}`,
      `prompt_embed_path=${join(root, 'pipeckpts/clr_embeds.pt')}`,
      `train_dataset.path=${join(root, 'data/data_mouse_train.txt')}`,
      `validation_dataset.path=${join(root, 'data/data_mouse_val.txt')}`,
      `output_dir=${join(root, `run-${moments}`)}`, `max_train_steps=${updates}`, 'gradient_accumulation_steps=1',
      'checkpointing_steps=100000', 'validation_steps=100000', 'validation_sanity_check=false',
      ...(moments === '8bit' ? ['use_8bit_adam=true'] : []),
      ...(size === 256 ? [] : [`img_wh=${size}`, `unet_from_pretrained_kwargs.sample_size=${size / 8}`]),
    ],
    threads,
    optimizerWorkers: workers,
    say: (l) => process.stderr.write(`${l}\n`),
    // Intervals between updates (the first update also loads and warms up, so it is not counted).
    onPass: () => {
      const now = performance.now();
      if (last) times.push((now - last) / 1000);
      if (last) optimizer.push((inOptimizer - lastOpt) / 1000);
      last = now;
      lastOpt = inOptimizer;
    },
  });
  const peak = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ update_s: times, optimizer_s: optimizer, peak_rss_mib: peak, params: 870_184_644 }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  const o = JSON.parse(process.argv[3]!) as {
    part: string; root: string; moments?: string; updates?: number; threads?: number; workers?: number; size?: number;
  };
  if (o.part === 'setup') await setupChild(o.root, o.size ?? 256);
  else await trainChild(o.root, o.moments ?? 'config', o.updates ?? 2, o.threads ?? 2, o.workers ?? 1, o.size ?? 256);
}
