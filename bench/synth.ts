/**
 * `npm run bench -- synth [--heads 2] [--resolution 512] [--threads 2]`
 *
 * Synthetic-head throughput: `facelift synth heads` end to end (generate the head, render every view, encode the
 * PNGs, write opencv_cameras.json, head.json and gaussians.ply) for each layout on its own — gslrm (32 views)
 * and mvdiffusion (6 views) — in heads per minute, each against the same run with everything on the calling
 * thread (the product path renders on worker threads and builds the next head in another worker meanwhile), and
 * the CPU seconds per head of both (steadier than wall time when other work shares the machine). Also: head generation alone (heads/min, Gaussians per head), the baseline being generation at twice
 * the default spacing (¼ of the Gaussians).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SplatRenderer } from '../src/splat/renderer.ts';
import { writeHeadDataset, type Layout } from '../src/synth/dataset.ts';
import { HeadPool } from '../src/synth/head-pool.ts';
import { DEFAULT_SPACING, generateHead } from '../src/synth/head.ts';
import { sampleHeadParams } from '../src/synth/params.ts';
import { numberArg } from './args.ts';
import type { BenchRun, Figure } from './figure.ts';

/** Wall and CPU seconds (all threads of the process) to write `heads` heads in one layout. */
async function timeLayout(
  layout: Layout, heads: number, resolution: number, renderer: SplatRenderer, pool: HeadPool,
): Promise<{ wall: number; cpu: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-synth-'));
  try {
    const t = performance.now();
    const c = process.cpuUsage();
    for await (const _ of writeHeadDataset({ outDir: dir, count: heads, seed: 1, resolution, layouts: [layout], valFraction: 0.05, renderer, pool })) { /* progress only */ }
    const used = process.cpuUsage(c);
    return { wall: (performance.now() - t) / 1000, cpu: (used.user + used.system) / 1e6 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const run: BenchRun = async function* (args): AsyncGenerator<Figure> {
  const heads = numberArg(args, 'heads', 2), res = numberArg(args, 'resolution', 512), threads = numberArg(args, 'threads', 2);

  // Generation alone.
  let t = performance.now();
  let gaussians = 0;
  for (let i = 0; i < heads; i++) gaussians += generateHead(sampleHeadParams(100 + i)).gaussians.count;
  const gen = (performance.now() - t) / 1000;
  t = performance.now();
  for (let i = 0; i < heads; i++) generateHead(sampleHeadParams(100 + i), { spacing: 2 * DEFAULT_SPACING });
  const genCoarse = (performance.now() - t) / 1000;
  yield {
    name: 'synth: head generation', value: (60 * heads) / gen, unit: 'heads/min', baseline: (60 * heads) / genCoarse,
    baselineName: 'spacing ×2 (¼ the Gaussians)', note: `${Math.round(gaussians / heads / 1000)}k Gaussians/head`,
  };

  const parallel = await SplatRenderer.create({ threads });
  const single = await SplatRenderer.create({ threads: 1 });
  const worker = new HeadPool(), inline = new HeadPool({ threads: 0 });
  try {
    for (const [layout, views] of [['gslrm', 32], ['mvdiffusion', 6]] as const) {
      const tp = await timeLayout(layout, heads, res, parallel, worker);
      const ts = await timeLayout(layout, heads, res, single, inline);
      yield {
        name: `synth heads --layout ${layout} (${views} views @${res}²)`, value: (60 * heads) / tp.wall, unit: 'heads/min',
        baseline: (60 * heads) / ts.wall, baselineName: 'all on the calling thread',
        note: `${heads} heads, ${parallel.threads} render threads + 1 generation thread, incl. PNG + PLY writing`,
      };
      // CPU time is steadier than wall time on a shared machine; the ratio shows what the threads cost.
      yield {
        name: `synth heads --layout ${layout}: CPU per head`, value: tp.cpu / heads, unit: 's', higherIsBetter: false,
        baseline: ts.cpu / heads, baselineName: 'all on the calling thread', note: 'user+system, all threads',
      };
    }
  } finally {
    await parallel.close();
    await single.close();
    await worker.close();
  }
};
