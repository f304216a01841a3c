/**
 * `facelift mouse convert | center-align | generate`: rig recordings → FaceLift samples whose cameras agree with
 * their images, and a fine-tuned diffusion model's six views of them as GS-LRM training samples (src/mouse). The
 * seed README's flag spellings (--input_dir, --frame_interval, …) are the ones shown; the dashed spellings work too.
 */
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { SCHEDULERS, type Scheduler } from '../../diffusion/pipeline.ts';
import { centerAlign } from '../../mouse/center-align.ts';
import { convertRecording } from '../../mouse/convert.ts';
import { generateMouseSamples } from '../../mouse/generate.ts';
import { UserError } from '../../util/errors.ts';
import { intOption, positiveOption } from '../options.ts';

/** A flag under its README spelling and its dashed one. */
function both(cmd: Command, snake: string, description: string, parse?: (v: string) => unknown, fallback?: unknown): void {
  const dashed = snake.replace(/_/g, '-');
  const value = snake.endsWith('dir') ? ' <dir>' : ' <n>';
  const o = new Option(`--${snake}${value}`, description);
  if (parse) o.argParser(parse as (v: string, prev: unknown) => unknown);
  if (fallback !== undefined) o.default(fallback);
  cmd.addOption(o);
  const d = new Option(`--${dashed}${value}`).hideHelp();
  if (parse) d.argParser(parse as (v: string, prev: unknown) => unknown);
  cmd.addOption(d);
}

/** The value under either spelling (camelCase keys as commander makes them). */
function pick<T>(o: Record<string, unknown>, snake: string): T | undefined {
  const camel = snake.replace(/[_-](\w)/g, (_, c: string) => c.toUpperCase());
  return (o[camel] ?? o[snake]) as T | undefined;
}

/** --input_dir and --output_dir (either spelling), both required; `what` says what the input folder holds. */
function folders(o: Record<string, unknown>, what: string): { inputDir: string; outputDir: string } {
  const inputDir = pick<string>(o, 'input_dir'), outputDir = pick<string>(o, 'output_dir');
  if (!inputDir || !outputDir) throw new UserError(`give --input_dir ${what ? `${what} ` : ''}and --output_dir`);
  return { inputDir, outputDir };
}

function bar(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) {
    let last = -1;
    return {
      update: (done, total) => {
        const pct = Math.floor((100 * done) / Math.max(1, total));
        if (pct < last + 10 && done !== total) return;
        process.stderr.write(`${label}: ${done}/${total}\n`);
        last = pct;
      },
      stop: () => {},
    };
  }
  const b = new cliProgress.SingleBar({ stream: process.stderr, format: `${label} {bar} {value}/{total} | ETA {eta_formatted}` },
    cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: (done, total) => {
      if (!started) {
        b.start(total, done);
        started = true;
      }
      b.setTotal(total);
      b.update(done);
    },
    stop: () => b.stop(),
  };
}

export function register(program: Command): void {
  const mouse = program.command('mouse').description('mouse domain adaptation: rig recordings → FaceLift training samples');

  const convert = mouse.command('convert')
    .description('markerless_mouse_1_nerf (6 colour + 6 mask videos, new_cam.pkl) → sample_XXXXXX/ folders (RGBA views, ' +
      'opencv_cameras.json that agree with them) + data_mouse_train.txt / data_mouse_val.txt');
  both(convert, 'input_dir', 'the recording folder (videos_undist/, simpleclick_undist/, new_cam.pkl)');
  both(convert, 'output_dir', 'where the samples go');
  both(convert, 'frame_interval', 'every n-th frame becomes a sample', intOption('--frame_interval', 1, 1_000_000), 5);
  both(convert, 'target_size', 'side of the written views, pixels', intOption('--target_size', 16, 4096), 512);
  both(convert, 'target_ratio', "the sample's largest object box as a share of the side", positiveOption('--target_ratio'), 0.6);
  both(convert, 'max_samples', 'stop after this many samples', intOption('--max_samples', 1, 10_000_000));
  both(convert, 'start_sample', 'number of the first sample folder', intOption('--start_sample', 0, 10_000_000), 0);
  convert.action(async (o: Record<string, unknown>) => {
    const { inputDir, outputDir } = folders(o, '(the recording)');
    const b = bar('frames');
    try {
      const r = await convertRecording({
        inputDir, outputDir,
        frameInterval: pick<number>(o, 'frame_interval')!, targetSize: pick<number>(o, 'target_size')!,
        targetRatio: pick<number>(o, 'target_ratio')!, startSample: pick<number>(o, 'start_sample')!,
        ...(pick<number>(o, 'max_samples') ? { maxSamples: pick<number>(o, 'max_samples')! } : {}),
        onProgress: b.update,
      });
      b.stop();
      process.stderr.write(`${r.samples} samples in ${outputDir} (${r.skipped} frames skipped: a camera's mask was empty); ` +
        `lists ${r.train}, ${r.val}\n`);
    } finally {
      b.stop();
    }
  });

  const align = mouse.command('center-align')
    .description("re-frame each sample's views (one scale per sample, each view centred) and move their intrinsics with them");
  both(align, 'input_dir', 'samples from facelift mouse convert');
  both(align, 'output_dir', 'where the aligned samples go');
  both(align, 'target_ratio', "the sample's largest object box as a share of the side", positiveOption('--target_ratio'), 0.6);
  align.action(async (o: Record<string, unknown>) => {
    const { inputDir, outputDir } = folders(o, '');
    const b = bar('samples');
    const skips: string[] = [];
    try {
      const r = await centerAlign({
        inputDir, outputDir, targetRatio: pick<number>(o, 'target_ratio')!, onProgress: b.update,
        onSkip: (name, why) => skips.push(`${name}: ${why}`),
      });
      b.stop();
      for (const s of skips) process.stderr.write(`skipped ${s}\n`);
      process.stderr.write(`${r.samples} samples aligned into ${outputDir}${r.skipped ? `, ${r.skipped} skipped` : ''}\n`);
    } finally {
      b.stop();
    }
  });

  const generate = mouse.command('generate')
    .description("a fine-tuned multi-view diffusion model's six views of each sample's reference view, with " +
      "FaceLift's six cameras (the layout configs/mouse_gslrm_synthetic.yaml trains on) + data_train.txt / " +
      'data_val.txt');
  generate.requiredOption('--weights <dir>',
    'the fine-tuned pipeckpts/ (or a weights folder with mvdiffusion/pipeckpts)');
  both(generate, 'input_dir', 'samples from facelift mouse convert / center-align');
  both(generate, 'output_dir', 'where the generated samples go');
  both(generate, 'reference_view', 'the view the model is conditioned on', intOption('--reference_view', 0, 63), 0);
  generate.addOption(new Option('--cameras <which>', 'cameras of the written views: facelift (the model draws ' +
    "FaceLift's six views) or sample (a model fine-tuned on the rig's own views draws those)")
    .choices(['facelift', 'sample']).default('facelift'));
  generate.option('--steps <n>', 'sampling steps (default 50)', intOption('--steps', 1, 1000));
  generate.addOption(new Option('--scheduler <name>', "the sampler: FaceLift's DDIM, DPM-Solver++ (2M) or UniPC")
    .choices([...SCHEDULERS]).default('ddim'));
  generate.option('--guidance-scale <x>', 'classifier-free guidance scale (default 3)',
    positiveOption('--guidance-scale'));
  generate.option('--seed <n>', "sample k's noise seed is seed + k", intOption('--seed', 0, 2 ** 31 - 1), 42);
  generate.option('--prompt-embeds <file>', "per-view prompt embeddings (default: clr_embeds.pt beside the pipeline, " +
    "else the pipeline's text encoder)");
  both(generate, 'max_samples', 'only the first n samples', intOption('--max_samples', 1, 10_000_000));
  generate.option('--threads <n>', 'onnxruntime threads (default: all cores)', intOption('--threads', 1, 1024));
  generate.action(async (o: Record<string, unknown>) => {
    const { inputDir, outputDir } = folders(o, '(the samples)');
    const b = bar('samples');
    const skips: string[] = [];
    try {
      const r = await generateMouseSamples({
        weights: o.weights as string, inputDir, outputDir,
        referenceView: pick<number>(o, 'reference_view')!, cameras: o.cameras as 'facelift' | 'sample',
        seed: o.seed as number,
        ...(o.steps ? { steps: o.steps as number } : {}),
        scheduler: o.scheduler as Scheduler,
        ...(o.guidanceScale !== undefined ? { guidance: o.guidanceScale as number } : {}),
        ...(o.promptEmbeds ? { promptEmbeds: o.promptEmbeds as string } : {}),
        ...(pick<number>(o, 'max_samples') ? { maxSamples: pick<number>(o, 'max_samples')! } : {}),
        ...(o.threads ? { threads: o.threads as number } : {}),
        onProgress: b.update, onSkip: (name, why) => skips.push(`${name}: ${why}`),
      });
      b.stop();
      for (const s of skips) process.stderr.write(`skipped ${s}\n`);
      process.stderr.write(`${r.samples} samples generated into ${outputDir} at ${r.imageSize}²` +
        `${r.kept ? ` (${r.kept} already there, kept)` : ''}${r.skipped ? `, ${r.skipped} skipped` : ''}; ` +
        `lists ${r.train}, ${r.val}\n`);
    } finally {
      b.stop();
    }
  });
}
