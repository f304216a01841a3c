/**
 * `npm run bench -- render [--gaussians 500000] [--frames 150] [--resolution 512] [--threads 2] [--baseline-frames 16]
 *   [--repeat 3]`
 *
 * A generated head-sized scene (src/splat/testing/scene.ts: 500k Gaussians on and inside a 0.62×0.72×0.85
 * ellipsoid, 4–20 mm scales, mixed opacities) rendered as FaceLift's turntable (150 frames at 512², elevation 0).
 * Figures: turntable wall time and frames/s with the frame-parallel worker path, the same with H.264 encoding,
 * one frame with the tile-parallel path, and the backward pass per frame; each against the single-thread path
 * (which, for the turntable, is timed on `--baseline-frames` evenly spaced frames and scaled to the full count).
 * Goal (issue 4): the 150-frame turntable in ≤ 20 s on 2 cores.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { turntableCameras } from '../src/cameras/rigs.ts';
import { rasterize, rasterizeBackward } from '../src/splat/rasterize.ts';
import { SplatRenderer } from '../src/splat/renderer.ts';
import { headScene } from '../src/splat/testing/scene.ts';
import { renderTurntable } from '../src/splat/turntable.ts';
import { numberArg } from './args.ts';
import type { BenchRun, Figure } from './figure.ts';

export const run: BenchRun = async function* (args): AsyncGenerator<Figure> {
  const N = numberArg(args, 'gaussians', 500_000), frames = numberArg(args, 'frames', 150), res = numberArg(args, 'resolution', 512);
  const threads = numberArg(args, 'threads', 2), B = Math.min(frames, numberArg(args, 'baseline-frames', 16));
  const repeat = Math.floor(numberArg(args, 'repeat', 3));
  const g = headScene(N, 1);
  const cams = turntableCameras(frames, res);
  const tag = `${frames}×${res}², ${(N / 1000).toFixed(0)}k Gaussians`;

  // Single-thread baseline on B evenly spaced frames.
  const single = await SplatRenderer.create({ threads: 1 });
  await single.setScene(g);
  const sub = Array.from({ length: B }, (_, i) => cams[Math.floor((i * frames) / B)]);
  let t = performance.now();
  const c1 = process.cpuUsage();
  await single.renderFrames(sub, { colorOnly: true });
  const perFrame1 = (performance.now() - t) / 1000 / B;
  const cpuFrame1 = ((c => c.user + c.system)(process.cpuUsage(c1))) / 1e6 / B;
  await single.close();

  // The host's speed wanders (a shared VM): the turntable is timed `repeat` times, each on fresh workers (so each
  // pays its JIT warm-up, as a one-off `facelift render` does), and the median run is reported.
  let r = await SplatRenderer.create({ threads });
  t = performance.now();
  await r.setScene(g);
  const setup = (performance.now() - t) / 1000;
  const runs: Array<{ wall: number; cpuSeconds: number }> = [];
  for (let k = 0; k < repeat; k++) {
    if (k > 0) {
      await r.close();
      r = await SplatRenderer.create({ threads });
      await r.setScene(g);
    }
    t = performance.now();
    const cpu0 = process.cpuUsage();
    // Colour only, as renderTurntable renders.
    await r.renderFrames(cams, { colorOnly: true });
    const cpu = process.cpuUsage(cpu0);
    runs.push({ wall: (performance.now() - t) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
  }
  const { wall, cpuSeconds } = [...runs].sort((a, b) => a.wall - b.wall)[Math.floor((runs.length - 1) / 2)];
  let blended = 0;
  for (const v of (await r.render(cams[0])).nBlended) blended += v;
  yield {
    name: `turntable render, ${tag}`, value: wall, unit: 's', baseline: perFrame1 * frames,
    baselineName: `1 thread (${B} frames, scaled)`,
    note: `${threads} workers, frame-parallel, colour only; median of ${repeat} runs (${runs.map((x) => x.wall.toFixed(1)).join(', ')} s); goal ≤ 20 s; scene upload+cache ${setup.toFixed(2)} s; ${(blended / (res * res)).toFixed(1)} Gaussians blended/pixel`,
  };
  yield { name: 'turntable frames/s', value: frames / wall, unit: 'frames/s', baseline: 1 / perFrame1, baselineName: '1 thread' };
  // On a shared machine the wall time above includes waiting for other processes; the CPU time spent, spread over
  // the workers, is what the same run takes on idle cores (when the frames keep every worker busy).
  yield {
    name: `turntable CPU time ÷ ${threads} workers`, value: cpuSeconds / threads, unit: 's',
    note: `process CPU ${cpuSeconds.toFixed(1)} s (all threads); machine load average ${loadavg()[0].toFixed(1)} during the run`,
  };

  yield {
    name: `1-thread CPU per frame × ${frames} ÷ ${threads}`, value: (cpuFrame1 * frames) / threads, unit: 's',
    note: `${(cpuFrame1 * 1000).toFixed(0)} ms CPU/frame on 1 thread: the turntable time on ${threads} idle cores if frames split evenly`,
  };

  const dir = await mkdtemp(join(tmpdir(), 'bench-render-'));
  try {
    const tt = await renderTurntable(g, { out: join(dir, 'turntable.mp4'), frames, resolution: res, renderer: r });
    yield { name: `renderTurntable → MP4, ${tag}`, value: tt.seconds, unit: 's', note: 'incl. scene upload and H.264 yuv420p encode (ffmpeg, piped)' };
  } finally {
    await rm(dir, { recursive: true });
  }

  // One frame, tile-parallel vs single thread.
  const probe = [0, 37, 75].map((i) => cams[i % frames]);
  t = performance.now();
  for (const c of probe) await r.render(c);
  const tilePar = (performance.now() - t) / probe.length;
  t = performance.now();
  for (const c of probe) rasterize(g, c);
  const tileOne = (performance.now() - t) / probe.length;
  yield { name: `one frame (tile-parallel), ${res}²`, value: tilePar, unit: 'ms/frame', baseline: tileOne, baselineName: 'rasterize() on 1 thread', note: `${threads} workers` };

  // Backward: dL/drgb for L = mean squared difference to grey.
  const ups = await Promise.all(probe.map(async (c) => {
    const img = await r.render(c);
    return { dRgb: Float32Array.from(img.rgb, (v) => (2 * (v - 0.5)) / img.rgb.length) };
  }));
  t = performance.now();
  for (let i = 0; i < probe.length; i++) await r.backward(probe[i], ups[i]);
  const bwdPar = (performance.now() - t) / probe.length;
  t = performance.now();
  for (let i = 0; i < probe.length; i++) rasterizeBackward(g, probe[i], ups[i]);
  const bwdOne = (performance.now() - t) / probe.length;
  yield { name: `backward per frame, ${res}²`, value: bwdPar, unit: 'ms/frame', baseline: bwdOne, baselineName: 'rasterizeBackward() on 1 thread', note: `${threads} workers; both include the forward pass the backward recomputes` };
  await r.close();
};
