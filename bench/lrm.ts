/**
 * `npm run bench -- lrm [--threads 2] [--views 6] [--size 512] [--layers 24] [--chunk 256] [--head-chunk N] [--fused] [--no-baseline]`
 *
 * One full-size GS-LRM forward (official config: 6 views × 512², 24,578 tokens, 24 layers, random official-init
 * weights) through src/lrm on onnxruntime, against the same network in PyTorch (bench/baselines/gslrm.py, Debian's
 * python3-torch, same thread count). Each side runs in its own process so that peak RSS is its own
 * (getrusage maxrss, weights included). Smaller `--size/--layers` give a quick run.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchRun, Figure } from './figure.ts';

interface Opts { threads: number; views: number; size: number; layers: number; chunk: number; headChunk: number; fused: boolean; baseline: boolean }
interface Result { wall_s: number; layer_median_s: number; setup_s?: number; peak_rss_mib: number; tokens: number; params: number; finite: boolean }

const RSS_LIMIT_GIB = 24;

function parseArgs(args: string[]): Opts {
  const o: Opts = { threads: 2, views: 6, size: 512, layers: 24, chunk: 256, headChunk: 16, fused: false, baseline: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--no-baseline') { o.baseline = false; continue; }
    if (a === '--fused') { o.fused = true; continue; }
    const key = a.replace(/^--/, '').replace('head-chunk', 'headChunk') as keyof Opts;
    const v = Number(args[++i]);
    if (!['threads', 'views', 'size', 'layers', 'chunk', 'headChunk'].includes(key) || !Number.isInteger(v) || v <= 0) {
      throw new Error(`lrm bench: unknown or bad argument ${a} ${args[i] ?? ''} (use --threads N --views N --size N --layers N --chunk N --head-chunk N --fused --no-baseline)`);
    }
    (o[key] as number) = v;
  }
  if (o.size % 8) throw new Error('--size must be a multiple of 8');
  return o;
}

/** FLOPs of one forward (multiply-adds × 2; matmuls and attention only), as in research/perf-anchors.md. */
function forwardFlops(o: Opts, d = 1024): number {
  const L = 2 + o.views * (o.size / 8) ** 2;
  const nImg = L - 2;
  return o.layers * (2 * L * 12 * d * d + 4 * L * L * d) + 2 * nImg * 576 * d + 2 * nImg * d * 896 + 2 * 2 * d * 14;
}

export const run: BenchRun = async function* (args) {
  const o = parseArgs(args);
  const shape = `${o.views}×${o.size}², ${2 + o.views * (o.size / 8) ** 2} tokens, ${o.layers} layers`;
  const ours = runChild(o);
  let base: Result | null = null;
  let baseNote = '';
  if (o.baseline) {
    const r = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('./baselines/gslrm.py', import.meta.url)),
      '--threads', String(o.threads), '--views', String(o.views), '--size', String(o.size), '--layers', String(o.layers), '--chunk', String(o.chunk)],
    { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status === 0) {
      base = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result & { torch: string };
      baseNote = `PyTorch ${(base as Result & { torch: string }).torch} CPU`;
    } else {
      baseNote = r.signal ? `baseline killed by ${r.signal}` : `baseline failed (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); needs Debian's python3-torch at /usr/bin/python3`;
    }
  }
  const flops = forwardFlops(o);
  const withBase = (f: Figure, b: number | undefined): Figure => (b === undefined ? { ...f, note: [f.note, baseNote].filter(Boolean).join('; ') } : { ...f, baseline: b, baselineName: baseNote });
  yield withBase({ name: `gslrm forward wall (${shape})`, value: ours.wall_s, unit: 's', note: `${o.threads} threads, chunk ${o.chunk} q × ${o.headChunk} heads${o.fused ? ', fused' : ''}; setup ${ours.setup_s?.toFixed(1)} s not included` }, base?.wall_s);
  // The median layer is less sensitive than the total to other load on a shared machine.
  yield withBase({ name: 'gslrm median transformer layer', value: ours.layer_median_s, unit: 's' }, base?.layer_median_s);
  yield withBase({ name: 'gslrm forward throughput', value: flops / ours.wall_s / 1e9, unit: 'GFLOP/s', note: `${(flops / 1e12).toFixed(2)} TFLOP per forward` }, base ? flops / base.wall_s / 1e9 : undefined);
  const gib = ours.peak_rss_mib / 1024;
  yield withBase({
    name: 'gslrm forward peak RSS', value: gib, unit: 'GiB',
    note: `${gib <= RSS_LIMIT_GIB ? 'within' : 'OVER'} the ${RSS_LIMIT_GIB} GiB limit; weights ${(ours.params * 4 / 2 ** 30).toFixed(2)} GiB included`,
  }, base ? base.peak_rss_mib / 1024 : undefined);
  if (!ours.finite) throw new Error('the forward produced non-finite values');
};

function runChild(o: Opts): Result {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', JSON.stringify(o)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`lrm bench child failed with status ${r.status}${r.signal ? ` (signal ${r.signal}: out of memory?)` : ''}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

/** The measured side, in its own process. */
async function child(o: Opts): Promise<void> {
  const { OFFICIAL_GSLRM_CONFIG } = await import('../src/lrm/config.ts');
  const { randomGslrmWeights } = await import('../src/lrm/weights.ts');
  const { GslrmNetwork } = await import('../src/lrm/network.ts');
  const cfg = {
    ...OFFICIAL_GSLRM_CONFIG,
    image_tokenizer: { ...OFFICIAL_GSLRM_CONFIG.image_tokenizer, image_size: o.size },
    transformer: { ...OFFICIAL_GSLRM_CONFIG.transformer, n_layer: o.layers },
  };
  const weights = randomGslrmWeights(cfg, 0);
  const nImg = o.views * (o.size / 8) ** 2;
  const patches = new Float32Array(nImg * 576);
  let s = 12345;
  for (let i = 0; i < patches.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; patches[i] = s / 2 ** 31 - 1; }
  const t0 = performance.now();
  const net = await GslrmNetwork.create(cfg, weights, { views: o.views, chunk: o.chunk, headChunk: o.headChunk, fused: o.fused, threads: o.threads });
  const t1 = performance.now();
  const layerTimes: number[] = [];
  let last = performance.now();
  const raw = await net.forward(patches, {
    onStage: (st) => {
      const now = performance.now();
      if (st.kind === 'layer') {
        layerTimes.push((now - last) / 1000);
        process.stderr.write(`\r  ours: layer ${st.layer + 1}/${st.layers} ${((now - t1) / 1000).toFixed(0)} s `);
      }
      last = now;
    },
  });
  const t2 = performance.now();
  process.stderr.write('\n');
  await net.release();
  let params = 0;
  for (const w of weights.values()) params += w.length;
  const result: Result = {
    wall_s: (t2 - t1) / 1000,
    layer_median_s: [...layerTimes].sort((a, b) => a - b)[Math.floor(layerTimes.length / 2)]!,
    setup_s: (t1 - t0) / 1000,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    tokens: 2 + nImg,
    params,
    finite: raw.every(Number.isFinite),
  };
  console.log(JSON.stringify(result));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  await child(JSON.parse(process.argv[3]!) as Opts);
}
