/**
 * `facelift reconstruct --views DIR --cameras opencv_cameras.json -o DIR [--checkpoint F] [--config F] [--no-filter]`:
 * GS-LRM only (spec gslrm.md §2–4, pipeline.md §6): posed views → Gaussians → gaussians.ply, output.png (renders
 * of the unfiltered Gaussians at the input cameras, side by side) and turntable.mp4 (of the written Gaussians).
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { Camera } from '../../cameras/camera.ts';
import { readCameraFile, type CameraFrame } from '../../cameras/opencv-json.ts';
import { hconcat, planarToImage, writePng, type RawImage } from '../../io/image.ts';
import { loadGslrmConfig } from '../../lrm/config.ts';
import { reconstruct, type Reconstruction } from '../../lrm/reconstruct.ts';
import { listViewFiles, readViews } from '../../lrm/views.ts';
import { loadGslrmWeights } from '../../lrm/weights.ts';
import { faceliftCacheDir, SHIPPED_GSLRM_CONFIG } from '../../pipeline/weights.ts';
import { FACELIFT_FILTERS, filterGaussians } from '../../splat/filters.ts';
import { writePly } from '../../splat/ply.ts';
import { SplatRenderer } from '../../splat/renderer.ts';
import { renderTurntable } from '../../splat/turntable.ts';
import { UserError } from '../../util/errors.ts';
import { intOption } from '../options.ts';

interface ReconstructOpts {
  views: string;
  cameras: string;
  output: string;
  checkpoint?: string;
  config?: string;
  filter: boolean;
  frames: number;
  threads?: number;
  chunk?: number;
  json?: boolean;
}


const CKPT = /^ckpt_\d+\.(pt|safetensors)$/;

/** The newest `gslrm/ckpt_*.pt` of the usual weights folders ($FACELIFT_WEIGHTS, ./checkpoints, the facelift cache). */
export function defaultCheckpoint(env: NodeJS.ProcessEnv = process.env): string {
  const roots = [env.FACELIFT_WEIGHTS, 'checkpoints', join(faceliftCacheDir(env), 'checkpoints')].filter((r): r is string => !!r);
  for (const root of roots) {
    const dir = join(root, 'gslrm');
    const found = existsSync(dir) ? readdirSync(dir).filter((f) => CKPT.test(f)).sort() : [];
    if (found.length) return resolve(dir, found[found.length - 1]!);
  }
  throw new UserError(`no GS-LRM checkpoint found (looked for gslrm/ckpt_*.pt in ${roots.join(', ')}); ` +
    'run `facelift weights download` or pass --checkpoint FILE');
}

/**
 * One camera per view file. When every frame names its image (`file_path`), views are matched by file name;
 * otherwise frame i belongs to cam_00i.png.
 */
export function camerasForViews(frames: readonly CameraFrame[], files: readonly string[], source: string): Camera[] {
  if (frames.length !== files.length) {
    throw new UserError(`${source} has ${frames.length} camera frame(s) but the views folder has ${files.length} image(s) (cam_000.png…); they must match one to one`);
  }
  if (!frames.every((f) => f.filePath)) return frames.map((f) => f.camera);
  const byName = new Map(frames.map((f) => [basename(f.filePath!), f.camera]));
  return files.map((file) => {
    const cam = byName.get(basename(file));
    if (!cam) throw new UserError(`${source} has no frame whose file_path is ${basename(file)} (frames name ${[...byName.keys()].slice(0, 3).join(', ')}…)`);
    return cam;
  });
}

export function register(program: Command): void {
  program.command('reconstruct')
    .description('GS-LRM only: posed views (cam_000.png…) + opencv_cameras.json → gaussians.ply, output.png, turntable.mp4')
    .requiredOption('--views <dir>', 'folder with cam_000.png, cam_001.png, … (RGB, or RGBA composited onto white)')
    .requiredOption('--cameras <file>', 'opencv_cameras.json with one frame per view (matched by file_path when present, else in order)')
    .requiredOption('-o, --output <dir>', 'output folder')
    .option('--checkpoint <file>', 'GS-LRM ckpt_*.pt (default: the newest gslrm/ckpt_*.pt in $FACELIFT_WEIGHTS, ./checkpoints or the facelift cache)')
    .option('--config <file>', 'GS-LRM config in the configs/gslrm.yaml layout (default: the official one shipped with facelift)')
    .option('--no-filter', 'write all Gaussians in the model\'s order instead of the FaceLift-filtered set')
    .option('--frames <n>', 'turntable frames', intOption('--frames', 1, 100_000), 150)
    .option('--threads <n>', 'CPU threads for the model and the renderer (default: all cores)', intOption('--threads', 1, 256))
    .option('--chunk <n>', 'attention queries per chunk (memory vs speed)', intOption('--chunk', 1, 1 << 20))
    .option('--json', 'print a JSON summary')
    .action(async (o: ReconstructOpts) => {
      const t0 = performance.now();
      const config = loadGslrmConfig(o.config ?? SHIPPED_GSLRM_CONFIG);
      const files = listViewFiles(o.views);
      const camFile = await readCameraFile(o.cameras);
      const cameras = camerasForViews(camFile.frames, files, o.cameras);
      const views = await readViews(files);
      const checkpoint = o.checkpoint ?? defaultCheckpoint();
      const weights = await loadGslrmWeights(checkpoint, config);

      const bar = new cliProgress.SingleBar({
        format: '{stage} {bar} {value}/{total} | {duration_formatted} elapsed, ETA {eta_formatted}', hideCursor: true, stream: process.stderr,
      }, cliProgress.Presets.shades_classic);
      const total = config.transformer.n_layer + 1;
      bar.start(total, 0, { stage: 'reconstruct' });
      let rec: Reconstruction;
      try {
        rec = await reconstruct(views, cameras, { config, weights }, {
          ...(o.threads ? { threads: o.threads } : {}),
          ...(o.chunk ? { chunk: o.chunk } : {}),
          onProgress: (done) => bar.update(done),
        });
        bar.update(total);
      } finally {
        bar.stop();
      }
      weights.clear();

      await mkdir(o.output, { recursive: true });
      const renderer = await SplatRenderer.create({ threads: o.threads });
      const outputs: string[] = [];
      try {
        // output.png: the unfiltered Gaussians at the input cameras (as inference.py renders before filtering).
        await renderer.setScene(rec.gaussians);
        const row: RawImage[] = [];
        for (const cam of cameras) row.push(planarToImage((await renderer.render(cam)).rgb, cam.width, cam.height));
        const outPng = join(o.output, 'output.png');
        await writePng(outPng, hconcat(row));
        const kept = o.filter ? filterGaussians(rec.gaussians, FACELIFT_FILTERS) : null;
        const final = kept ? kept.gaussians : rec.gaussians;
        const ply = join(o.output, 'gaussians.ply');
        await writePly(ply, final);
        const mp4 = join(o.output, 'turntable.mp4');
        bar.start(o.frames, 0, { stage: 'turntable' });
        try {
          await renderTurntable(final, { out: mp4, frames: o.frames, resolution: views.width, renderer, onProgress: (d) => bar.update(d) });
        } finally {
          bar.stop();
        }
        outputs.push(ply, outPng, mp4);
        const seconds = (performance.now() - t0) / 1000;
        const summary = { checkpoint, views: views.views, gaussians: rec.gaussians.count, written: final.count, filter: kept?.report ?? null, files: outputs, seconds };
        if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
        else process.stdout.write(`${views.views} views → ${rec.gaussians.count} Gaussians, ${final.count} written to ${ply} (+ output.png, turntable.mp4) in ${seconds.toFixed(1)} s\n`);
      } finally {
        await renderer.close();
      }
    });
}
