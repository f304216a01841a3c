import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { contactSheet, thumbnail, type Thumb } from '../../synth/contact-sheet.ts';
import { LAYOUTS, writeHeadDataset, type Layout } from '../../synth/dataset.ts';
import { DEFAULT_SPACING } from '../../synth/head.ts';
import { writePng } from '../../io/image.ts';
import { writePortraits } from '../../synth/portraits.ts';
import { UserError } from '../../util/errors.ts';
import { intOption } from '../options.ts';

/** Heads per contact sheet; columns are views. */
const SHEET_ROWS = 12;
const THUMB = 128;
/** Every 4th view of the 32-view rig, starting at the front (cam_024), going round toward the subject's left. */
const GSLRM_PREVIEW = [24, 28, 0, 4, 8, 12, 16, 20];

function num(name: string, lo: number, hi: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < lo || n >= hi) throw new UserError(`${name} must be a number in [${lo}, ${hi}), got "${v}"`);
    return n;
  };
}

function bar(label: string, total: number): { tick: (name: string) => void; stop: () => void } {
  const b = new cliProgress.SingleBar({
    format: `${label} {bar} {value}/{total} | {name} | {duration_formatted} elapsed, ETA {eta_formatted}`,
    hideCursor: true,
    stream: process.stderr,
  }, cliProgress.Presets.shades_classic);
  b.start(total, 0, { name: '' });
  return { tick: (name) => b.increment(1, { name }), stop: () => b.stop() };
}

async function writeSheets(dir: string, rows: Thumb[][], stem: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let s = 0; s * SHEET_ROWS < rows.length; s++) {
    const sheet = contactSheet(rows.slice(s * SHEET_ROWS, (s + 1) * SHEET_ROWS));
    const file = join(dir, `${stem}_${String(s).padStart(3, '0')}.png`);
    await writePng(file, { width: sheet.width, height: sheet.height, channels: 3, data: sheet.rgb });
    files.push(file);
  }
  return files;
}

interface HeadsOpts {
  output: string;
  count: number;
  seed: number;
  resolution: number;
  layout: Layout | 'both';
  valFraction: number;
  spacing: number;
  elevations: number[];
  ply: boolean;
  preview?: boolean;
  json?: boolean;
}

function elevationList(v: string): number[] {
  const list = v.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || !list.every((e) => Number.isFinite(e) && Math.abs(e) < 90)) {
    throw new UserError(`--elevations takes degrees between -90 and 90 separated by commas (e.g. 0,20), got "${v}"`);
  }
  return list;
}

export function register(program: Command): void {
  const synth = program.command('synth').description('procedural synthetic 3D heads (Gaussian sets) rendered into FaceLift training data');

  synth.command('heads')
    .description('write N synthetic heads in the GS-LRM (32 views + opencv_cameras.json) and/or MV-diffusion (6 views) layouts')
    .requiredOption('-o, --output <dir>', 'output folder (gslrm/ and mvdiffusion/ are created inside)')
    .requiredOption('--count <n>', 'number of heads', intOption('--count', 1, 10_000_000))
    .option('--seed <s>', 'dataset seed (head i uses a seed derived from it)', intOption('--seed', 0, 2 ** 32 - 1), 0)
    .option('--resolution <px>', 'square image size', intOption('--resolution', 16, 4096), 512)
    .option('--layout <layout>', 'gslrm | mvdiffusion | both', 'both')
    .option('--val-fraction <f>', 'fraction of heads listed in the val files', num('--val-fraction', 0, 1), 0.05)
    .option('--spacing <units>', 'surface spacing between Gaussians (smaller = denser)', num('--spacing', 0.002, 0.05), DEFAULT_SPACING)
    .option('--elevations <deg,...>', 'GS-LRM layout: one ring of 32 views per elevation, in file order', elevationList, [20])
    .option('--no-ply', 'skip gaussians.ply (about 250 bytes per Gaussian, ~40 MB per head)')
    .option('--preview', 'also write contact sheets (PNG grids of views) under DIR/preview/')
    .option('--json', 'print a JSON summary {dir, heads, layouts, gaussians_mean, seconds, heads_per_minute, sheets}')
    .action(async (o: HeadsOpts) => {
      if (o.layout !== 'both' && !LAYOUTS.includes(o.layout)) throw new UserError(`--layout must be gslrm, mvdiffusion or both, got "${o.layout}"`);
      const layouts: Layout[] = o.layout === 'both' ? [...LAYOUTS] : [o.layout];
      const rows: Record<Layout, Thumb[][]> = { gslrm: [], mvdiffusion: [] };
      const progress = bar('heads', o.count);
      const t0 = performance.now();
      let gaussians = 0;
      try {
        for await (const w of writeHeadDataset({
          outDir: o.output, count: o.count, seed: o.seed, resolution: o.resolution, layouts, valFraction: o.valFraction, spacing: o.spacing, writePly: o.ply,
          elevations: o.elevations,
        })) {
          if (o.preview) {
            if (w.views.gslrm) rows.gslrm.push(GSLRM_PREVIEW.map((i) => thumbnail(w.views.gslrm![i], THUMB)));
            if (w.views.mvdiffusion) rows.mvdiffusion.push(w.views.mvdiffusion.map((v) => thumbnail(v, THUMB)));
          }
          gaussians += w.head.gaussians.count;
          progress.tick(`${w.name} ${w.head.params.hair.style}, ${w.head.gaussians.count} Gaussians`);
        }
      } finally {
        progress.stop();
      }
      const sheets: string[] = [];
      if (o.preview) for (const l of layouts) sheets.push(...await writeSheets(join(resolve(o.output), 'preview'), rows[l], `contact_${l}`));
      const seconds = (performance.now() - t0) / 1000;
      if (o.json) {
        process.stdout.write(JSON.stringify({
          dir: resolve(o.output), heads: o.count, layouts, gaussians_mean: Math.round(gaussians / o.count), seconds, heads_per_minute: (60 * o.count) / seconds, sheets,
        }) + '\n');
        return;
      }
      process.stdout.write(`wrote ${o.count} heads (${layouts.join(', ')}) to ${resolve(o.output)}${sheets.length ? `; contact sheets: ${sheets.join(', ')}` : ''}\n`);
    });

  synth.command('portraits')
    .description('write N photo-like frontal portraits (random pose, light and background) as RGB PNGs + portraits.json')
    .requiredOption('-o, --output <dir>', 'output folder')
    .requiredOption('--count <n>', 'number of portraits', intOption('--count', 1, 1_000_000))
    .option('--seed <s>', 'seed', intOption('--seed', 0, 2 ** 32 - 1), 0)
    .option('--resolution <px>', 'square image size', intOption('--resolution', 16, 4096), 512)
    .option('--spacing <units>', 'surface spacing between Gaussians', num('--spacing', 0.002, 0.05), DEFAULT_SPACING)
    .option('--preview', 'also write a contact sheet of the portraits')
    .action(async (o: { output: string; count: number; seed: number; resolution: number; spacing: number; preview?: boolean }) => {
      const progress = bar('portraits', o.count);
      const files: string[] = [];
      const thumbs: Thumb[] = [];
      try {
        for await (const w of writePortraits({ outDir: o.output, count: o.count, seed: o.seed, resolution: o.resolution, spacing: o.spacing })) {
          files.push(w.record.file);
          if (o.preview) thumbs.push(thumbnail(w.image, THUMB));
          progress.tick(w.record.file);
        }
      } finally {
        progress.stop();
      }
      const rows: Thumb[][] = [];
      for (let i = 0; i < thumbs.length; i += 8) rows.push(thumbs.slice(i, i + 8));
      const sheets = o.preview ? await writeSheets(join(resolve(o.output), 'preview'), rows, 'contact_portraits') : [];
      process.stdout.write(`wrote ${files.length} portraits to ${resolve(o.output)}${sheets.length ? `; contact sheets: ${sheets.join(', ')}` : ''}\n`);
    });
}
