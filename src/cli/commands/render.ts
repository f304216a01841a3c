import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { Camera } from '../../cameras/camera.ts';
import { readCameraFile } from '../../cameras/opencv-json.ts';
import { FACELIFT_VIEWS, faceliftViews } from '../../cameras/rigs.ts';
import { planarToImage, writePng } from '../../io/image.ts';
import { FACELIFT_FILTERS, GRADIO_FILTERS, filterGaussians } from '../../splat/filters.ts';
import { readPly } from '../../splat/ply.ts';
import { SplatRenderer } from '../../splat/renderer.ts';
import { renderTurntable } from '../../splat/turntable.ts';
import { UserError } from '../../util/errors.ts';
import { intOption } from '../options.ts';

interface RenderOpts {
  ply: string;
  cameras?: string;
  turntable?: number;
  resolution?: number;
  output: string;
  fps: number;
  background: [number, number, number];
  filter: 'none' | 'facelift' | 'gradio';
  threads?: number;
  json?: boolean;
}


function colour(v: string): [number, number, number] {
  if (v === 'white') return [1, 1, 1];
  if (v === 'black') return [0, 0, 0];
  const parts = v.split(',').map(Number);
  if (parts.length !== 3 || !parts.every((x) => Number.isFinite(x) && x >= 0 && x <= 1)) {
    throw new UserError(`--background must be white, black or "r,g,b" with values in [0, 1], got "${v}"`);
  }
  return [parts[0], parts[1], parts[2]];
}

/** The camera scaled so that its width is `width` pixels (height keeps the aspect ratio). */
function rescale(c: Camera, width: number): Camera {
  const s = width / c.width;
  return { ...c, width, height: Math.max(1, Math.round(c.height * s)), fx: c.fx * s, fy: c.fy * s, cx: c.cx * s, cy: c.cy * s };
}

export function register(program: Command): void {
  program.command('render')
    .description('rasterize a Gaussian PLY: one PNG per camera (opencv_cameras.json, default the 6 FaceLift views) or a turntable MP4')
    .requiredOption('--ply <file>', 'Gaussian splat PLY (FaceLift or standard 3DGS layout)')
    .option('--cameras <file>', 'opencv_cameras.json: render each frame to a PNG')
    .option('--turntable <frames>', 'render a turntable of N frames to turntable.mp4', intOption('--turntable', 1, 100_000))
    .option('--resolution <px>', 'image width (turntable/FaceLift views: square; camera files: rescaled, default their own size)', intOption('--resolution', 8, 8192))
    .requiredOption('-o, --output <dir>', 'output folder')
    .option('--fps <n>', 'turntable frame rate', intOption('--fps', 1, 240), 30)
    .option('--background <colour>', 'white | black | r,g,b in [0,1]', colour, [1, 1, 1])
    .option('--filter <rules>', 'Gaussian filters before rendering: none | facelift | gradio', 'none')
    .option('--threads <n>', 'worker threads (default: all cores)', intOption('--threads', 1, 256))
    .option('--json', 'print a JSON summary')
    .action(async (o: RenderOpts) => {
      if (o.cameras && o.turntable) throw new UserError('give either --cameras or --turntable, not both');
      if (!['none', 'facelift', 'gradio'].includes(o.filter)) throw new UserError(`--filter must be none, facelift or gradio, got "${o.filter}"`);
      let g = await readPly(o.ply);
      if (o.filter !== 'none') g = filterGaussians(g, o.filter === 'gradio' ? GRADIO_FILTERS : FACELIFT_FILTERS).gaussians;
      await mkdir(o.output, { recursive: true });
      const t0 = performance.now();
      const files: string[] = [];
      const bar = new cliProgress.SingleBar({
        format: 'render {bar} {value}/{total} | {duration_formatted} elapsed, ETA {eta_formatted}', hideCursor: true, stream: process.stderr,
      }, cliProgress.Presets.shades_classic);
      if (o.turntable) {
        const out = join(o.output, 'turntable.mp4');
        bar.start(o.turntable, 0);
        try {
          await renderTurntable(g, { out, frames: o.turntable, fps: o.fps, resolution: o.resolution ?? 512, background: o.background, threads: o.threads, onProgress: (d) => bar.update(d) });
        } finally {
          bar.stop();
        }
        files.push(out);
      } else {
        let cams: Array<{ camera: Camera; name: string }>;
        if (o.cameras) {
          const file = await readCameraFile(o.cameras);
          cams = file.frames.map((f, i) => ({
            camera: o.resolution ? rescale(f.camera, o.resolution) : f.camera,
            name: f.filePath ? basename(f.filePath, extname(f.filePath)) : `view_${String(i).padStart(3, '0')}`,
          }));
          if (new Set(cams.map((c) => c.name)).size !== cams.length) cams = cams.map((c, i) => ({ ...c, name: `view_${String(i).padStart(3, '0')}` }));
        } else {
          cams = faceliftViews(o.resolution ?? 512).map((camera, i) => ({ camera, name: FACELIFT_VIEWS[i].name }));
        }
        const renderer = await SplatRenderer.create({ threads: o.threads });
        bar.start(cams.length, 0);
        try {
          await renderer.setScene(g);
          for (const { camera, name } of cams) {
            const img = await renderer.render(camera, { background: o.background });
            const file = join(o.output, `${name}.png`);
            await writePng(file, planarToImage(img.rgb, camera.width, camera.height));
            files.push(file);
            bar.increment();
          }
        } finally {
          bar.stop();
          await renderer.close();
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      if (o.json) process.stdout.write(JSON.stringify({ gaussians: g.count, files, seconds }) + '\n');
      else process.stdout.write(`rendered ${g.count} Gaussians → ${files.length === 1 ? files[0] : `${files.length} PNGs in ${o.output}`} in ${seconds.toFixed(1)} s\n`);
    });
}
