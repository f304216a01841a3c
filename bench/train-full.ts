/**
 * `npm run bench -- train-full [--only slice|adamw|stage] [--tokens 4098,8194,16386,24578]
 *   [--stages 256,512,final,mouse] [--updates 3] [--threads 2] [--no-baseline]`
 *
 * Training at the official size, each measurement in its own process (its peak RSS is its own):
 *  - slice: a 2-layer slice of the full-size GS-LRM transformer (d 1024, 16 heads) at the token counts of the
 *    stages (4 views at 256²: 4,098; 8 views at 256²: 8,194; 4 views at 512²: 16,386; 6 views at 512²: 24,578):
 *    the forward alone, then forward + backward as training runs it (forward keeping block inputs; backward
 *    through RecomputedBlock, attention by flash blocks), interleaved in one process; against Debian's PyTorch 1.13
 *    on the same slice with a checkpoint per layer and per attention chunk (bench/baselines/gslrm_slice.py).
 *    Rates count 3 × the forward's FLOPs as useful ("credited"); the executed rate also counts the recomputation.
 *  - stage: a shipped GS-LRM stage config (configs/gslrm_pretrain_256.yaml, gslrm_pretrain_512.yaml, gslrm.yaml,
 *    or the fork's mouse_gslrm_lowmem.yaml: 384², 5 + 1 views) at full size, batch 1 and its views, random weights
 *    (network and the perceptual loss's VGG-19), synthetic targets, L2 warm-up off so every loss of the config runs: `--updates` optimizer updates through the real
 *    Trainer (fp32 moments unless the config asks for 8-bit), then its final checkpoint; peak RSS and seconds per
 *    pass, AdamW's share of it.
 *  - adamw: one AdamW update of the full GS-LRM (303.6 M) and of a UNet-sized set (870 M) of parameters, fp32 and
 *    8-bit moments, on the main thread alone and with worker threads (best of 2 after a warm-up), as the trainer
 *    runs it: NaN clean-up + global norm, then one fused clip/update pass.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { numberArg } from './args.ts';
import type { BenchRun, Figure } from './figure.ts';

const D = 1024;
const LAYERS = 2;

interface StageResult {
  tokens: number;
  views: number;
  params: number;
  moments: string;
  pass_s: number;
  adamw_s: number;
  checkpoint_s: number;
  peak_rss_mib: number;
}

interface SliceResult {
  fwd_s: number;
  fwdbwd_s: number;
  /** Ours only: forward + backward with the cut values kept (forwardSaving). */
  keep_s?: number;
  kept_bytes?: number;
  /** Ours only: the same with every activation the backward reads kept too (no forward work in the backward). */
  all_s?: number;
  all_bytes?: number;
  peak_rss_mib: number;
}

/** Matmul + attention FLOPs of one forward through `layers` blocks at L tokens. */
function sliceFlops(L: number): { total: number; attention: number } {
  const attention = LAYERS * 4 * L * L * D;
  return { total: LAYERS * 2 * L * 12 * D * D + attention, attention };
}

/** Executed FLOPs of forward + training backward: forward, recomputed segments, flash forward + backward. */
function executedFlops(L: number): number {
  const qkv = 2 * L * 3 * D * D,
    rest = 2 * L * 9 * D * D,
    attn = 4 * L * L * D;
  const perLayer =
    qkv + rest + attn + /* recompute */ qkv + attn + /* VJPs */ 3 * rest + 3 * qkv + /* flash bwd */ 2.5 * attn;
  return LAYERS * perLayer;
}

export const run: BenchRun = async function* (args) {
  const threads = numberArg(args, 'threads', 2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
  const baseline = !args.includes('--no-baseline');
  const tokens = (args.includes('--tokens') ? args[args.indexOf('--tokens') + 1]! : '4098,8194,16386,24578')
    .split(',')
    .map(Number);
  const self = fileURLToPath(import.meta.url);
  const child = <T>(what: object): T => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', JSON.stringify(what)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    if (r.status !== 0) throw new Error(`train-full child ${JSON.stringify(what)} failed with status ${r.status}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
  };

  if (!only || only === 'slice') {
    for (const L of tokens) {
      const ours = child<SliceResult>({ part: 'slice', tokens: L, threads });
      let base: (SliceResult & { torch: string }) | null = null,
        note = '';
      if (baseline) {
        const b = spawnSync(
          '/usr/bin/python3',
          [
            fileURLToPath(new URL('./baselines/gslrm_slice.py', import.meta.url)),
            ...['--threads', String(threads), '--tokens', String(L), '--layers', String(LAYERS)],
          ],
          { encoding: 'utf8', maxBuffer: 1 << 24 },
        );
        if (b.status === 0) {
          base = JSON.parse(b.stdout.trim().split('\n').pop()!) as SliceResult & { torch: string };
          note = `PyTorch ${base.torch} CPU, checkpoint per layer and per attention chunk`;
        } else note = `baseline failed (${(b.stderr || '').trim().split('\n').pop()}); needs Debian's python3-torch`;
      }
      const tag = `slice ${LAYERS}L d${D} @ ${L} tokens`;
      const { total } = sliceFlops(L);
      const withBase = (f: Figure, v: number | undefined): Figure =>
        v === undefined
          ? { ...f, note: [f.note, note].filter(Boolean).join('; ') }
          : { ...f, baseline: v, baselineName: note };
      const fwdRate = total / ours.fwd_s / 1e9;
      const trainRate = (3 * total) / ours.fwdbwd_s / 1e9;
      yield withBase({ name: `${tag} forward`, value: ours.fwd_s, unit: 's', note: `${threads} threads` }, base?.fwd_s);
      yield withBase({ name: `${tag} forward + backward`, value: ours.fwdbwd_s, unit: 's' }, base?.fwdbwd_s);
      yield { name: `${tag} forward rate`, value: fwdRate, unit: 'GFLOP/s' };
      yield {
        name: `${tag} fwd+bwd rate, credited`,
        value: trainRate,
        unit: 'GFLOP/s',
        note: `3 × forward FLOPs; ${(trainRate / fwdRate).toFixed(2)} × the forward's rate`,
      };
      const exec = executedFlops(L) / ours.fwdbwd_s / 1e9;
      yield {
        name: `${tag} fwd+bwd rate, executed`,
        value: exec,
        unit: 'GFLOP/s',
        note: `recomputation counted; ${(exec / fwdRate).toFixed(2)} × the forward's rate`,
      };
      if (ours.keep_s !== undefined) {
        const keepRate = (3 * total) / ours.keep_s / 1e9;
        yield {
          name: `${tag} fwd+bwd, cut values kept`,
          value: ours.keep_s,
          unit: 's',
          baseline: ours.fwdbwd_s,
          baselineName: 'recomputed in the backward',
          note: `forwardSaving: ${((ours.kept_bytes ?? 0) / 2 ** 30).toFixed(2)} GiB kept for ${LAYERS} layers`,
        };
        yield {
          name: `${tag} fwd+bwd rate, credited, cut values kept`,
          value: keepRate,
          unit: 'GFLOP/s',
          note: `3 × forward FLOPs; ${(keepRate / fwdRate).toFixed(2)} × the forward's rate`,
        };
      }
      if (ours.all_s !== undefined) {
        const allRate = (3 * total) / ours.all_s / 1e9;
        yield {
          name: `${tag} fwd+bwd, all activations kept`,
          value: ours.all_s,
          unit: 's',
          baseline: ours.fwdbwd_s,
          baselineName: 'recomputed in the backward',
          note: `forwardSaving with residuals: ${((ours.all_bytes ?? 0) / 2 ** 30).toFixed(2)} GiB kept for ` +
            `${LAYERS} layers; no forward work in the backward`,
        };
        yield {
          name: `${tag} fwd+bwd rate, credited, all activations kept`,
          value: allRate,
          unit: 'GFLOP/s',
          note: `3 × forward FLOPs; ${(allRate / fwdRate).toFixed(2)} × the forward's rate`,
        };
      }
      yield withBase(
        { name: `${tag} peak RSS`, value: ours.peak_rss_mib / 1024, unit: 'GiB' },
        base ? base.peak_rss_mib / 1024 : undefined,
      );
    }
  }
  if (!only || only === 'stage') {
    const stages = (args.includes('--stages') ? args[args.indexOf('--stages') + 1]! : '256').split(',');
    const updates = numberArg(args, 'updates', 3);
    for (const st of stages) {
      const file = {
        '256': 'gslrm_pretrain_256.yaml', '512': 'gslrm_pretrain_512.yaml', final: 'gslrm.yaml',
        mouse: 'mouse_gslrm_lowmem.yaml',
      }[st];
      if (!file) throw new Error(`--stages: unknown stage ${st} (256, 512, final or mouse)`);
      const r = child<StageResult>({ part: 'stage', config: file, updates, threads });
      const tag = `GS-LRM ${file} (${r.tokens} tokens, ${r.views} views)`;
      yield {
        name: `${tag}: ${updates} updates, peak RSS`,
        value: r.peak_rss_mib / 1024,
        unit: 'GiB',
        note: `${(r.params / 1e6).toFixed(1)} M parameters, ${r.moments} moments; limit 24 GiB`,
      };
      yield { name: `${tag}: seconds per pass`, value: r.pass_s, unit: 's', note: `median of ${updates}` };
      yield {
        name: `${tag}: AdamW share of a pass`,
        value: (100 * r.adamw_s) / r.pass_s,
        unit: '%',
        higherIsBetter: false,
        note: `${r.adamw_s.toFixed(2)} s per update (norm + fused clip/update)`,
      };
      yield { name: `${tag}: final checkpoint write`, value: r.checkpoint_s, unit: 's' };
    }
  }
  if (!only || only === 'adamw') {
    for (const n of [303_565_824, 870_000_000]) {
      for (const moments of ['fp32', '8bit']) {
        const r = child<Record<string, number>>({ part: 'adamw', params: n, moments, threads });
        const one = r['1 thread']!,
          many = r[`${threads} threads`]!;
        const tag = `AdamW ${(n / 1e6).toFixed(0)} M, ${moments} moments`;
        yield { name: `${tag}, 1 thread`, value: one, unit: 's', note: 'norm + fused clip/update, best of 2' };
        yield {
          name: `${tag}, ${threads} threads`,
          value: many,
          unit: 's',
          baseline: one,
          baselineName: '1 thread',
          note: `${((many * 1e9) / n).toFixed(1)} ns per parameter`,
        };
      }
    }
  }
};

async function sliceChild(L: number, threads: number): Promise<void> {
  const { RecomputedBlock } = await import('../src/core/index.ts');
  type SavedActivations = import('../src/core/index.ts').SavedActivations;
  const { buildGslrmGraphs } = await import('../src/lrm/network.ts');
  const views = Math.round((L - 2) / 1024);
  if (views * 1024 + 2 !== L) throw new Error('tokens must be 2 + views · 1024 (256² views)');
  const cfg = {
    image_tokenizer: { image_size: 256, patch_size: 8, in_channels: 9 },
    transformer: { d: D, d_head: 64, n_layer: LAYERS },
    gaussians: { n_gaussians: 2, sh_degree: 0, upsampler: { upsample_factor: 1 } },
    add_refsrc_marker: false,
    hard_pixelalign: true,
    use_custom_plucker: true,
    clip_xyz: true,
  };
  const gr = buildGslrmGraphs(cfg, { views, fused: true });
  let seed = 1;
  const rnd = (n: number, s: number, mean = 0) =>
    Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * s + mean);
  const layers = Array.from(
    { length: LAYERS },
    () =>
      new Map(
        gr.block.graph.params().map((p) => [
          p.name,
          p.shape.length > 1
            ? rnd(
                p.shape.reduce((a, b) => a * b, 1),
                0.06,
              )
            : rnd(p.shape[0]!, 0.1, 1),
        ]),
      ),
  );
  const block = await RecomputedBlock.create(
    { inputs: { x: gr.block.input }, outputs: gr.block.outputs },
    { params: layers[0]!, threads },
  );
  const use = (l: number) => {
    for (const [k, v] of layers[l]!) block.setParam(k, v);
  };
  const x0 = rnd(L * D, 2),
    gy = rnd(L * D, 1);
  const forward = async (): Promise<Float32Array[]> => {
    const saved: Float32Array[] = [x0];
    for (let l = 0; l < LAYERS; l++) {
      use(l);
      saved.push((await block.forward({ x: saved[l]! })).y!);
    }
    return saved;
  };
  let fwd = 0,
    fwdbwd = 0;
  for (let r = 0; r < 2; r++) {
    let t = performance.now();
    await forward();
    fwd = (performance.now() - t) / 1000;
    t = performance.now();
    const saved = await forward();
    let g: Float32Array = gy;
    for (let l = LAYERS - 1; l >= 0; l--) {
      use(l);
      g = (await block.backward({ x: saved[l]! }, { y: g })).inputs.x!;
    }
    fwdbwd = (performance.now() - t) / 1000;
  }
  // The same with each layer's cut values kept by the forward (forwardSaving) instead of recomputed in the backward,
  // and then with every activation the backward reads kept too (residuals).
  const kept = async (residuals: boolean): Promise<{ s: number; bytes: number }> => {
    let s = 0,
      bytes = 0;
    for (let r = 0; r < 2; r++) {
      const t = performance.now();
      const xs: Float32Array[] = [x0];
      const cuts: (SavedActivations | undefined)[] = [];
      for (let l = 0; l < LAYERS; l++) {
        use(l);
        const f = await block.forwardSaving({ x: xs[l]! }, { residuals });
        xs.push(f.outputs.y!);
        cuts.push(f.saved);
      }
      bytes = cuts.reduce((n, c) => n + (c?.bytes ?? 0), 0);
      let g: Float32Array = gy;
      for (let l = LAYERS - 1; l >= 0; l--) {
        use(l);
        g = (await block.backward({ x: xs[l]! }, { y: g }, { saved: cuts[l]! })).inputs.x!;
        cuts[l] = undefined;
      }
      s = (performance.now() - t) / 1000;
    }
    return { s, bytes };
  };
  const keep = await kept(false);
  const all = await kept(true);
  await block.release();
  console.log(JSON.stringify({
    fwd_s: fwd, fwdbwd_s: fwdbwd, keep_s: keep.s, kept_bytes: keep.bytes, all_s: all.s, all_bytes: all.bytes,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
  }));
}

async function adamwChild(n: number, moments: 'fp32' | '8bit', threads: number): Promise<void> {
  const { MomentAdamW } = await import('../src/train/optim/adamw.ts');
  const { sharedFloat32 } = await import('../src/train/optim/pool.ts');
  // Tensors of the GS-LRM block sizes, repeated up to n parameters.
  const sizes = [1024, 3 * 1024 * 1024, 1024 * 1024, 1024, 4 * 1024 * 1024, 4 * 1024 * 1024];
  const params = new Map<string, Float32Array>(),
    grads = new Map<string, Float32Array>();
  for (let i = 0, total = 0; total < n; i++) {
    const s = Math.min(sizes[i % sizes.length]!, n - total);
    params.set(`p${i}`, sharedFloat32(s).fill(0.01));
    grads.set(`p${i}`, sharedFloat32(s).fill(1e-3));
    total += s;
  }
  const out: Record<string, number> = {};
  for (const workers of [0, threads - 1]) {
    // As the trainer runs it: clean + global norm, then the fused clip/update/zero pass.
    const opt = new MomentAdamW(params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: () => 0.05, moments, workers });
    let best = Infinity;
    for (let r = 0; r < 3; r++) {
      const t = performance.now();
      const sq = await opt.cleanAndSumSquares(grads.values());
      await opt.step(grads, 1e-4, { gradScale: Math.min(1, 1 / Math.sqrt(sq)) });
      if (r > 0) best = Math.min(best, (performance.now() - t) / 1000);
    }
    out[`${workers + 1} thread${workers ? 's' : ''}`] = best;
    await opt.close();
    opt.state.clear();
  }
  console.log(JSON.stringify({ ...out, peak_rss_mib: process.resourceUsage().maxRSS / 1024 }));
}

async function stageChild(file: string, updates: number, threads: number): Promise<void> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { applyOverrides, readYamlTree } = await import('../src/train/config-tree.ts');
  const { parseGslrmTrainConfig } = await import('../src/train/gslrm/config.ts');
  const { randomGslrmWeights } = await import('../src/lrm/weights.ts');
  const { shareAll } = await import('../src/train/optim/pool.ts');
  const { PerceptualLoss, vggSpec } = await import('../src/train/gslrm/perceptual.ts');
  const { GslrmTrainStep } = await import('../src/train/gslrm/step.ts');
  const { Trainer } = await import('../src/train/trainer.ts');
  const { syntheticSample } = await import('../src/train/gslrm/testing/tiny.ts');
  const { MomentAdamW } = await import('../src/train/optim/adamw.ts');
  const path = fileURLToPath(new URL(`../configs/${file}`, import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'train-full-'));
  try {
    const tree = readYamlTree(path);
    applyOverrides(tree, [
      'training.dataloader.batch_size_per_gpu=1',
      'training.schedule.l2_warmup_steps=0',
      'training.dataset.dataset_path=synthetic',
      `training.checkpointing.checkpoint_dir=${dir}`,
    ]);
    const { config: cfg } = parseGslrmTrainConfig(tree, path);
    const S = cfg.model.image_tokenizer.image_size;
    const params = randomGslrmWeights(cfg.model, 0);
    shareAll(params);
    let seed = 7;
    const rnd = (n: number) =>
      Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.1);
    const losses =
      cfg.losses.perceptual > 0
        ? [
            await PerceptualLoss.create(
              new Map(vggSpec().map((v) => [v.key, rnd(v.shape.reduce((a, b) => a * b, 1))])),
              cfg.dataset.numViews,
              S,
              threads,
            ),
          ]
        : [];
    const step = await GslrmTrainStep.create(cfg, params, { threads, imageLosses: losses });
    const views = Array.from({ length: cfg.dataset.numViews }, (_, i) => Math.floor((i * 32) / cfg.dataset.numViews));
    const data = {
      length: updates,
      load: async (idx: readonly number[]) => idx.map((i) => syntheticSample(S, views, i + 1)),
    };
    const passTimes: number[] = [];
    let last = performance.now();
    const moments = cfg.optimizer.use8bit ? '8bit' : 'fp32';
    const trainer = new Trainer(
      step,
      data,
      {
        lr: cfg.optimizer.lr,
        betas: cfg.optimizer.betas,
        gradAccum: 1,
        clipNorm: cfg.runtime.clipNorm,
        allowedGradnormFactor: 1e9,
        batchSize: 1,
        numEpochs: 1,
        maxPasses: updates,
        warmup: 0,
        checkpointEvery: 1e9,
        printEvery: 1e9,
        visEvery: 1e9,
        validateEvery: null,
        seed: 0,
        checkpointDir: dir,
        moments,
        optimizerWorkers: threads - 1,
      },
      {
        onPass: () => {
          const now = performance.now();
          passTimes.push((now - last) / 1000);
          last = now;
        },
      },
    );
    await trainer.run();
    const checkpoint_s = (performance.now() - last) / 1000;
    await trainer.close();
    // AdamW's own cost, measured alone on the same parameters (the pass times above include it).
    const opt = new MomentAdamW(params, {
      betas: cfg.optimizer.betas,
      eps: 1e-8,
      weightDecay: (n) => step.weightDecay(n),
      moments,
      workers: threads - 1,
    });
    const trainable = new Map([...step.grads].filter(([k]) => !step.frozen.has(k)));
    await opt.step(trainable, 1e-6);
    const t = performance.now();
    const sq = await opt.cleanAndSumSquares(trainable.values());
    await opt.step(trainable, 1e-6, { gradScale: Math.min(1, 1 / Math.sqrt(sq + 1e-12)) });
    const adamw_s = (performance.now() - t) / 1000;
    await opt.close();
    await step.close();
    let n = 0;
    for (const [k, v] of params) if (!step.frozen.has(k)) n += v.length;
    console.log(
      JSON.stringify({
        tokens: 2 + cfg.dataset.numInputViews * (S / 8) ** 2,
        views: cfg.dataset.numViews,
        params: n,
        moments,
        pass_s: passTimes.sort((a, b) => a - b)[Math.floor(passTimes.length / 2)],
        adamw_s,
        checkpoint_s,
        peak_rss_mib: process.resourceUsage().maxRSS / 1024,
      } satisfies StageResult),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  const o = JSON.parse(process.argv[3]!) as {
    part: string;
    tokens?: number;
    params?: number;
    config?: string;
    updates?: number;
    moments?: string;
    threads: number;
  };
  if (o.part === 'slice') await sliceChild(o.tokens ?? 4098, o.threads);
  else if (o.part === 'stage') await stageChild(o.config ?? 'gslrm_pretrain_256.yaml', o.updates ?? 3, o.threads);
  else await adamwChild(o.params ?? 1e6, o.moments === '8bit' ? '8bit' : 'fp32', o.threads);
}

/** Each part has its own BENCHMARKS.md section, so parts measured in separate runs do not replace each other. */
export function section(args: string[]): string {
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
  const tokens = only === 'slice' && args.includes('--tokens') ? ` @ ${args[args.indexOf('--tokens') + 1]} tokens` : '';
  // The 256² stage keeps its section name from before stages other than 256 were measured.
  const stages = args.includes('--stages') ? args[args.indexOf('--stages') + 1]! : '256';
  const which = only === 'stage' && stages !== '256' ? ` (${stages})` : '';
  return only ? `train-full: ${only}${tokens}${which}` : 'train-full';
}
