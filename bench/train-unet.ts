/**
 * `npm run bench -- train-unet [--only block|step|encoders] [--sizes tiny,small,full,lowmem] [--moments fp32,8bit,none]
 *   [--optimizer-workers N] [--threads 2] [--no-baseline]` (`none`: forward + backward only)
 *
 * Training the multi-view UNet (issue #15, with #14's memory work), each measurement in its own process so its
 * peak RSS is its own:
 *  - block: one full-size UNet level (down_blocks.1: ResnetBlock2D 640 ch + multi-view transformer, 6 views at 32²,
 *    cross-attention to 77 × 1024) forward, and forward + backward as one graph and recomputed (RecomputedBlock,
 *    flash attention); against the same block hand-written in Debian's PyTorch 1.13 with plain autograd
 *    (bench/baselines/unet_block.py).
 *  - step: one training step of the UNet alone (frozen encoders' outputs cached, as training runs after the first
 *    epoch) at tiny (the golden pipeline's 0.56 M UNet, 64²), small (block channels 128–512, 128²) and full size
 *    (the official 870 M UNet, 512²): 1 object × 6 views forward + backward, the global norm, AdamW (fp32 or 8-bit
 *    moments) and the EMA update, for each combination of gradient checkpointing and moment storage. Full size
 *    without checkpointing is not run (its activations alone exceed the machine); random weights. lowmem: the
 *    official UNet at 256² (the fork's mouse_mvdiffusion_lowmem.yaml).
 *  - encoders: the frozen encoders' cost per object that the cache saves — CLIP image encoder on the input and
 *    the VAE posterior of the input and the 6 targets — at tiny and full size.
 */
import { spawnSync } from 'node:child_process';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Graph, RecomputedBlock, Session, vjpInput } from '../src/core/index.ts';
import { ClipVision } from '../src/diffusion/clip.ts';
import { declareClipVisionParams } from '../src/diffusion/clip-params.ts';
import {
  parseClipVisionConfig, parseUNetConfig, parseVaeConfig, type UNetConfig,
} from '../src/diffusion/config.ts';
import { JsonFields } from '../src/diffusion/json-fields.ts';
import { resnet } from '../src/diffusion/layers.ts';
import { paramSpecs, scope, type ParamDeclarer } from '../src/diffusion/params.ts';
import { multiViewTransformer } from '../src/diffusion/unet.ts';
import { declareUNetParams, resnetP, transformer2dP } from '../src/diffusion/unet-params.ts';
import { VaeEncoder } from '../src/diffusion/vae.ts';
import { declareVaeParams } from '../src/diffusion/vae-params.ts';
import { MomentAdamW } from '../src/train/optim/adamw.ts';
import { Ema } from '../src/train/optim/ema.ts';
import { shareAll, sharedFloat32 } from '../src/train/optim/pool.ts';
import { UNetGrad } from '../src/train/mvdiffusion/unet-grad.ts';
import { numberArg } from './args.ts';
import type { BenchRun, Figure } from './figure.ts';

const GOLDEN = new URL('../../shared/golden/', import.meta.url).pathname;
type Size = 'tiny' | 'small' | 'full' | 'lowmem';

function unetConfig(size: Size): UNetConfig {
  const file =
    size === 'tiny' ? join(GOLDEN, 'pipeline-tiny/pipeckpts/unet/config.json') : join(GOLDEN, 'official-keys/unet_mv_config.json');
  const c = parseUNetConfig(JsonFields.fromFile(file));
  // The fork's mouse_mvdiffusion_lowmem.yaml: the official UNet at img_wh 256 (sample_size 32).
  if (size === 'lowmem') return { ...c, sampleSize: 32 };
  if (size !== 'small') return c;
  return { ...c, sampleSize: 16, blockOutChannels: [128, 256, 512, 512], heads: [2, 4, 8, 8] };
}

let seed = 1;
const rnd = (n: number, s: number, mean = 0) =>
  Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * s + mean);
const randomParams = (specs: ReadonlyArray<{ name: string; shape: readonly number[] }>) =>
  new Map(
    specs.map((s) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      return [s.name, s.shape.length > 1 ? rnd(n, 2 / Math.sqrt(n / s.shape[0]!)) : rnd(n, 0.1, s.name.endsWith('weight') ? 1 : 0)];
    }),
  );
const peak = () => process.resourceUsage().maxRSS / 1024;
const time = async (f: () => Promise<unknown>, repeat = 2): Promise<number> => {
  await f();
  let best = Infinity;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await f();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
};

export const run: BenchRun = async function* (args) {
  const threads = numberArg(args, 'threads', 2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
  const sizes = (args.includes('--sizes') ? args[args.indexOf('--sizes') + 1]! : 'tiny,small,full').split(',') as Size[];
  const baseline = !args.includes('--no-baseline');
  const self = fileURLToPath(import.meta.url);
  const child = <T>(what: object): T | null => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', JSON.stringify(what)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    if (r.signal === 'SIGKILL') return null; // the kernel's OOM killer: reported as "did not fit"
    if (r.status !== 0) throw new Error(`train-unet child ${JSON.stringify(what)} failed with status ${r.status}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
  };
  const must = <T>(what: object): T => {
    const r = child<T>(what);
    if (r === null) throw new Error(`train-unet child ${JSON.stringify(what)} was killed (out of memory?)`);
    return r;
  };
  // Optimizer worker threads need the parameters in shared memory, which onnxruntime reads through one private copy.
  const workersAt = args.indexOf('--optimizer-workers');
  const workers = workersAt >= 0 ? Math.max(0, Math.floor(Number(args[workersAt + 1]))) : threads - 1;
  const momentsArg = args.includes('--moments') ? args[args.indexOf('--moments') + 1]!.split(',') : ['fp32', '8bit'];

  if (!only || only === 'block') {
    const ours = must<Record<string, number>>({ part: 'block', threads });
    let base: Record<string, number> | null = null,
      ckpt: Record<string, number> | null = null,
      note = '';
    const torch = (extra: string[]) => {
      const b = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('./baselines/unet_block.py', import.meta.url)),
        '--channels', '640', '--heads', '10', '--size', '32', '--threads', String(threads), ...extra], { encoding: 'utf8' });
      if (b.status !== 0) {
        note = `baseline failed (${(b.stderr || '').trim().split('\n').pop()}); needs Debian's python3-torch`;
        return null;
      }
      return JSON.parse(b.stdout.trim().split('\n').pop()!) as Record<string, number>;
    };
    if (baseline) {
      base = torch([]);
      ckpt = torch(['--checkpoint']);
      if (base) note = `PyTorch ${String((base as unknown as { torch: string }).torch)} CPU, plain autograd`;
    }
    const tag = 'UNet level 1 (resnet + MV transformer, 640 ch, 6 × 32²)';
    const vs = (f: Figure, v: number | undefined): Figure =>
      v === undefined ? { ...f, note: [f.note, note].filter(Boolean).join('; ') } : { ...f, baseline: v, baselineName: note };
    yield vs({ name: `${tag} forward`, value: ours.fwd_s!, unit: 's', note: `${threads} threads` }, base?.fwd_s);
    yield vs({ name: `${tag} fwd+bwd, one graph`, value: ours.fwdbwd_s!, unit: 's' }, base?.fwdbwd_s);
    yield ckpt
      ? { name: `${tag} fwd+bwd, recomputed`, value: ours.recomputed_s!, unit: 's', baseline: ckpt.fwdbwd_s!,
          baselineName: `${note.replace('plain autograd', 'torch.utils.checkpoint around the block')}` }
      : vs({ name: `${tag} fwd+bwd, recomputed`, value: ours.recomputed_s!, unit: 's' }, undefined);
    yield vs({ name: `${tag} peak RSS (ours: all three)`, value: ours.peak_rss_mib!, unit: 'MiB' }, base?.peak_rss_mib);
  }

  if (!only || only === 'step') {
    for (const size of sizes) {
      for (const recompute of size === 'full' || size === 'lowmem' ? [true] : [false, true]) {
        for (const moments of momentsArg) {
          const r = child<Record<string, number>>({ part: 'step', size, recompute, moments, threads, workers });
          if (r === null) {
            yield {
              name: `${size} UNet step, ${recompute ? 'checkpointing' : 'one graph'}, ${moments === 'none' ? 'forward + ' +
                'backward only' : `${moments} moments, ${workers} optimizer worker(s)`}: did not fit`,
              value: totalmem() / 2 ** 30, unit: 'GiB',
              note: "killed by the kernel's OOM killer before finishing a step; the value is the machine's memory",
            };
            continue;
          }
          const tag = `${size} UNet (${(r.params! / 1e6).toFixed(2)} M) step, ${recompute ? 'checkpointing' : 'one graph'}, ` +
            `${moments === 'none' ? 'forward + backward only' : `${moments} moments`}` +
            `${workers === threads - 1 ? '' : `, ${workers} optimizer workers`}`;
          yield { name: `${tag}: total`, value: r.step_s!, unit: 's', note: `1 object × 6 views at ${r.image}²; ${threads} threads` };
          yield { name: `${tag}: fwd+bwd`, value: r.pass_s!, unit: 's' };
          yield { name: `${tag}: norm + AdamW`, value: r.adamw_s!, unit: 's' };
          yield { name: `${tag}: EMA`, value: r.ema_s!, unit: 's' };
          yield { name: `${tag}: peak RSS`, value: r.peak_rss_mib! / 1024, unit: 'GiB' };
        }
      }
    }
  }

  if (!only || only === 'encoders') {
    for (const size of sizes.filter((s) => s !== 'small')) {
      const r = must<Record<string, number>>({ part: 'encoders', size, threads });
      yield {
        name: `${size} frozen encoders per object (CLIP + 7 VAE posteriors)`,
        value: r.total_s!,
        unit: 's',
        note: `CLIP ${r.clip_s!.toFixed(2)} s, VAE ${r.vae_s!.toFixed(2)} s per image; the cache skips this after the first epoch`,
      };
    }
  }
};

async function blockChild(threads: number): Promise<void> {
  const C = 640, heads = 10, S = 32, V = 6;
  const build = (fused: boolean) => {
    const g = new Graph('unet-block');
    const d: ParamDeclarer<ReturnType<Graph['param']>> = g;
    const rp = resnetP(scope(d, 'resnet'), C, C, 1280);
    const tp = transformer2dP(scope(d, 'attn'), C, heads, 1024);
    const x = g.input('x', [V, C, S, S]);
    const temb = g.input('temb', [V, 1280]);
    const ctx = g.input('ctx', [V, 77, 1024]);
    const y = multiViewTransformer(resnet(x, rp, temb, 32, 1e-5), ctx, tp, { groups: 32, views: V, mode: 'sparse' }, fused ? { fused: true } : {});
    return { g, x, temb, ctx, y };
  };
  const plain = build(false);
  const params = randomParams(plain.g.params());
  const feeds = { x: rnd(V * C * S * S, 2), temb: rnd(V * 1280, 2), ctx: rnd(V * 77 * 1024, 2) };
  const gy = rnd(V * C * S * S, 1);
  const fwd = await Session.create({ y: plain.y }, { params, threads, memPattern: false });
  const fwd_s = await time(() => fwd.run(feeds));
  await fwd.release();
  const vj = vjpInput(plain.y, [plain.x, ...plain.g.paramTensors()], 'grad:y');
  const outs = Object.fromEntries(vj.grads.map((t, i) => [`g${i}`, t]));
  const bwd = await Session.create(outs, { params, threads, memPattern: false });
  const fwdbwd_s = await time(() => bwd.run({ ...feeds, 'grad:y': gy }));
  await bwd.release();
  const f = build(true);
  const rb = await RecomputedBlock.create(
    { inputs: { x: f.x, temb: f.temb, ctx: f.ctx }, outputs: { y: f.y } },
    { params, threads, inputGrads: ['x'] },
  );
  const recomputed_s = await time(async () => {
    await rb.forward(feeds);
    await rb.backward(feeds, { y: gy });
  });
  await rb.release();
  console.log(JSON.stringify({ fwd_s, fwdbwd_s, recomputed_s, peak_rss_mib: peak() }));
}

/** `moments: 'none'`: forward + backward only (no optimizer, no EMA), to see what the network alone needs. */
async function stepChild(size: Size, recompute: boolean, moments: 'fp32' | '8bit' | 'none', threads: number, workers: number): Promise<void> {
  const c = unetConfig(size);
  const params = randomParams(paramSpecs((d) => declareUNetParams(d, c)));
  let count = 0;
  for (const v of params.values()) count += v.length;
  if (workers) shareAll(params);
  const N = 6, h = c.sampleSize;
  const net = await UNetGrad.create(c, params, { batch: N, tokens: 77, recompute, threads });
  const feeds = {
    sample: rnd(N * c.inChannels * h * h, 2),
    timestepEmbedding: rnd(N * c.blockOutChannels[0]!, 2),
    classLabels: rnd(N * c.classEmbedInputDim, 2),
    context: rnd(N * 77 * c.crossAttentionDim, 2),
  };
  const target = rnd(N * 4 * h * h, 2);
  const train = moments !== 'none';
  const opt = train ? new MomentAdamW(params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: () => 1e-2, moments, workers }) : null;
  const ema = train ? Ema.of(params, params.keys()) : null;
  // As the trainer holds them: one accumulator per parameter (shared memory when the optimizer has threads), into
  // which the backward adds, zeroed by the update.
  const grads = new Map([...params].map(([k, p]) => [k, workers ? sharedFloat32(p.length) : new Float32Array(p.length)]));
  const t = { pass: Infinity, adamw: Infinity, ema: Infinity, step: Infinity };
  const iterations = size === 'full' || size === 'lowmem' ? 2 : 3;
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await net.lossAndGrads(feeds, target, Array(N).fill(1), { addTo: grads, scale: 1 });
    const t1 = performance.now();
    if (opt) {
      const norm = Math.sqrt(await opt.cleanAndSumSquares(grads.values()));
      await opt.step(grads, 1e-4, { gradScale: Math.min(1, 1 / (norm + 1e-6)), zeroGrad: true });
    } else for (const g of grads.values()) g.fill(0);
    const t2 = performance.now();
    ema?.step(params);
    const t3 = performance.now();
    if (i === 0 && iterations > 2) continue;
    t.pass = Math.min(t.pass, (t1 - t0) / 1000);
    t.adamw = Math.min(t.adamw, (t2 - t1) / 1000);
    t.ema = Math.min(t.ema, (t3 - t2) / 1000);
    t.step = Math.min(t.step, (t3 - t0) / 1000);
  }
  await opt?.close();
  await net.release();
  console.log(JSON.stringify({
    params: count, image: 8 * h, pass_s: t.pass, adamw_s: t.adamw, ema_s: t.ema, step_s: t.step, peak_rss_mib: peak(),
  }));
}

async function encodersChild(size: Size, threads: number): Promise<void> {
  const dir = size === 'tiny' ? join(GOLDEN, 'pipeline-tiny/pipeckpts') : join(GOLDEN, 'official-keys');
  const vaeCfg = parseVaeConfig(JsonFields.fromFile(size === 'tiny' ? join(dir, 'vae/config.json') : join(dir, 'vae_config.json')));
  const clipCfg = parseClipVisionConfig(
    JsonFields.fromFile(size === 'tiny' ? join(dir, 'image_encoder/config.json') : join(dir, 'clip_vision_config.json')),
  );
  const S = size === 'tiny' ? 64 : 512;
  const vg = new Graph('vae');
  const enc = new VaeEncoder(vg, vaeCfg).forward(vg.input('x', [1, 3, S, S]));
  const vae = await Session.create({ mean: enc.mean, std: enc.std }, {
    params: randomParams(paramSpecs((d) => declareVaeParams(d, vaeCfg))), threads, memPattern: false, arena: false,
  });
  const vae_s = await time(() => vae.run({ x: rnd(3 * S * S, 2) }));
  await vae.release();
  const cg = new Graph('clip');
  const P = clipCfg.imageSize;
  const emb = new ClipVision(cg, clipCfg).forward(cg.input('pixels', [1, 3, P, P]));
  const clip = await Session.create({ emb }, {
    params: randomParams(paramSpecs((d) => declareClipVisionParams(d, clipCfg))), threads, memPattern: false, arena: false,
  });
  const clip_s = await time(() => clip.run({ pixels: rnd(3 * P * P, 2) }));
  await clip.release();
  console.log(JSON.stringify({ vae_s, clip_s, total_s: clip_s + 7 * vae_s, peak_rss_mib: peak() }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  const o = JSON.parse(process.argv[3]!) as {
    part: string; size: Size; recompute: boolean; moments: 'fp32' | '8bit' | 'none'; threads: number; workers?: number;
  };
  if (o.part === 'block') await blockChild(o.threads);
  else if (o.part === 'step') await stepChild(o.size, o.recompute, o.moments, o.threads, o.workers ?? Math.max(0, o.threads - 1));
  else await encodersChild(o.size, o.threads);
}

/** BENCHMARKS.md section per part and sizes, so that runs of different parts keep each other's figures. */
export function section(args: string[]): string {
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
  const sizes = args.includes('--sizes') ? ` (${args[args.indexOf('--sizes') + 1]})` : '';
  return only ? `train-unet: ${only}${sizes}` : 'train-unet';
}
