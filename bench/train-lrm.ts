/**
 * `npm run bench -- train-lrm [--threads 2] [--reps 3] [--only small|medium] [--no-baseline]`
 *
 * GS-LRM training speed at two sizes — small (2 layers, d 128, 4 × 64² inputs) and medium (6 layers, d 256,
 * 4 × 128²) — each in its own process (peak RSS is its own):
 *  - network forward + backward with per-layer recomputation (src/train/gslrm/network-grad.ts), against the same
 *    network in PyTorch 1.13 with torch.utils.checkpoint per layer (bench/baselines/gslrm_train.py, Debian's
 *    python3-torch, same threads), and its rate in GFLOP/s counted as 3 × the forward's matmul FLOPs (the
 *    recomputed forward is not credited, on either side);
 *  - one whole train step (network, Gaussian decoding, rasterizer forward + backward at 8 target views, L2);
 *  - one AdamW update over all parameters, against torch.optim.AdamW.
 * Times are medians of `--reps` after one warm-up.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { numberArg } from './args.ts';
import type { BenchRun, Figure } from './figure.ts';

interface Size {
  name: string;
  size: number;
  layers: number;
  d: number;
  dHead: number;
  views: number;
  targets: number;
}
const SIZES: Size[] = [
  { name: 'small', size: 64, layers: 2, d: 128, dHead: 16, views: 4, targets: 8 },
  { name: 'medium', size: 128, layers: 6, d: 256, dHead: 32, views: 4, targets: 8 },
];
interface Ours {
  fwdbwd_s: number;
  step_s: number;
  adamw_s: number;
  peak_rss_mib: number;
  params: number;
}
interface Torch {
  fwdbwd_s: number;
  adamw_s: number;
  peak_rss_mib: number;
  torch: string;
}

function forwardFlops(s: Size): number {
  const nImg = s.views * (s.size / 8) ** 2,
    L = 2 + nImg,
    d = s.d;
  return s.layers * (2 * L * 12 * d * d + 4 * L * L * d) + 2 * nImg * 576 * d + 2 * nImg * d * 896 + 2 * 2 * d * 14;
}

export const run: BenchRun = async function* (args) {
  const threads = numberArg(args, 'threads', 2),
    reps = numberArg(args, 'reps', 3);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
  const baseline = !args.includes('--no-baseline');
  for (const s of SIZES.filter((x) => !only || x.name === only)) {
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', self, '--child', JSON.stringify({ ...s, threads, reps })],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
    );
    if (r.status !== 0) throw new Error(`train-lrm child (${s.name}) failed with status ${r.status}`);
    const ours = JSON.parse(r.stdout.trim().split('\n').pop()!) as Ours;
    let base: Torch | null = null,
      note = '';
    if (baseline) {
      const b = spawnSync(
        '/usr/bin/python3',
        [
          fileURLToPath(new URL('./baselines/gslrm_train.py', import.meta.url)),
          '--threads',
          String(threads),
          '--views',
          String(s.views),
          '--size',
          String(s.size),
          '--layers',
          String(s.layers),
          '--d',
          String(s.d),
          '--d-head',
          String(s.dHead),
          '--reps',
          String(reps),
        ],
        { encoding: 'utf8', maxBuffer: 1 << 24 },
      );
      if (b.status === 0) {
        base = JSON.parse(b.stdout.trim().split('\n').pop()!) as Torch;
        note = `PyTorch ${base.torch} CPU, checkpoint per layer`;
      } else note = `baseline failed (${(b.stderr || '').trim().split('\n').pop()}); needs Debian's python3-torch`;
    }
    const tag = `${s.name} (${s.layers}L d${s.d}, ${s.views}×${s.size}²)`;
    const fl = 3 * forwardFlops(s);
    const withBase = (f: Figure, v: number | undefined): Figure =>
      v === undefined
        ? { ...f, note: [f.note, note].filter(Boolean).join('; ') }
        : { ...f, baseline: v, baselineName: note };
    yield withBase(
      { name: `${tag} network fwd+bwd`, value: ours.fwdbwd_s, unit: 's', note: `${threads} threads` },
      base?.fwdbwd_s,
    );
    yield withBase(
      {
        name: `${tag} network fwd+bwd rate`,
        value: fl / ours.fwdbwd_s / 1e9,
        unit: 'GFLOP/s',
        note: `${(fl / 1e9).toFixed(1)} GFLOP (3 × forward)`,
      },
      base ? fl / base.fwdbwd_s / 1e9 : undefined,
    );
    yield {
      name: `${tag} whole train step`,
      value: ours.step_s,
      unit: 's',
      note: `network + decoding + rasterizer fwd/bwd at ${s.targets} views + L2`,
    };
    yield withBase(
      {
        name: `${tag} AdamW update`,
        value: ours.adamw_s * 1000,
        unit: 'ms',
        note: `${(ours.params / 1e6).toFixed(2)} M parameters`,
      },
      base ? base.adamw_s * 1000 : undefined,
    );
    yield withBase(
      { name: `${tag} peak RSS`, value: ours.peak_rss_mib / 1024, unit: 'GiB' },
      base ? base.peak_rss_mib / 1024 : undefined,
    );
  }
};

async function child(o: Size & { threads: number; reps: number }): Promise<void> {
  const { randomGslrmWeights } = await import('../src/lrm/weights.ts');
  const { GslrmGradNetwork } = await import('../src/train/gslrm/network-grad.ts');
  const { GslrmTrainStep } = await import('../src/train/gslrm/step.ts');
  const { AdamW } = await import('../src/core/optim.ts');
  const { syntheticSample, tinyConfig } = await import('../src/train/gslrm/testing/tiny.ts');
  const cfg = tinyConfig({ size: o.size, layers: o.layers, d: o.d, nIn: o.views, nViews: o.targets });
  cfg.model.transformer.d_head = o.dHead;
  const params = randomGslrmWeights(cfg.model, 0);
  const median = async (f: () => Promise<void>) => {
    const t: number[] = [];
    for (let i = 0; i <= o.reps; i++) {
      const t0 = performance.now();
      await f();
      if (i > 0) t.push((performance.now() - t0) / 1000);
    }
    return t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
  };
  const net = await GslrmGradNetwork.create(cfg.model, params, { views: o.views, threads: o.threads });
  const patches = Float32Array.from({ length: o.views * (o.size / 8) ** 2 * 576 }, (_, i) => Math.sin(i));
  const dRaw = Float32Array.from({ length: (2 + o.views * o.size * o.size) * 14 }, (_, i) => Math.cos(i) * 1e-3);
  const grads = new Map<string, Float32Array>();
  const fwdbwd = await median(async () => {
    const f = await net.forward(patches);
    await net.backward(patches, f, dRaw, grads, new Set());
  });
  await net.release();
  const step = await GslrmTrainStep.create(cfg, params, { threads: o.threads });
  const sample = syntheticSample(o.size, [24, 16, 8, 0, 20, 28, 4, 12].slice(0, o.targets));
  const stepS = await median(async () => {
    await step.run([sample], 1000, 1);
  });
  const opt = new AdamW(params, { lr: 1e-4, betas: [0.9, 0.95], weightDecay: (n) => step.weightDecay(n) });
  const adamw = await median(async () => opt.step(step.grads));
  await step.close();
  let n = 0;
  for (const w of params.values()) n += w.length;
  console.log(
    JSON.stringify({
      fwdbwd_s: fwdbwd,
      step_s: stepS,
      adamw_s: adamw,
      peak_rss_mib: process.resourceUsage().maxRSS / 1024,
      params: n,
    } satisfies Ours),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  await child(JSON.parse(process.argv[3]!) as Size & { threads: number; reps: number });
}
