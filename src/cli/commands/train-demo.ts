/**
 * `facelift train vae --config F [--set k=v …] [--resume] [--stop-after-minutes N] [--threads N] [--json]`: trains a
 * VAE (src/train/vae). `facelift train new-pipeline --recipe F --vae DIR -o DIR`: a multi-view diffusion pipeline
 * with fresh weights around a trained VAE, for `facelift train mvdiffusion` to train from scratch.
 */
import type { Command } from 'commander';
import { writeNewPipeline } from '../../train/demo/new-pipeline.ts';
import { packDemo } from '../../train/demo/pack.ts';
import { trainVae } from '../../train/vae/run.ts';
import { intOption, positiveOption } from '../options.ts';
import { runOptions, stopOnSignal, trainBar } from '../train-session.ts';

interface VaeOpts {
  config: string;
  set: string[];
  resume?: boolean;
  exportOnly?: boolean;
  stopAfterMinutes?: number;
  threads?: number;
  json?: boolean;
}

export function registerVae(train: Command): void {
  train
    .command('vae')
    .description("train a VAE (diffusers' AutoencoderKL) on FaceLift samples' views, e.g. configs/demo/vae.yaml")
    .requiredOption('--config <file>', 'VAE training config (configs/demo/vae.yaml)')
    .option('--set <key=value>', 'override a config key, e.g. training.lr=2e-4 (repeatable)',
      (v: string, p: string[]) => [...p, v], [])
    .option('--resume', 'require a ckpt_*.pt in the output folder and continue from it')
    .option('--export-only', 'write <output_dir>/vae from the newest checkpoint, no training')
    .option('--stop-after-minutes <n>', 'write a checkpoint and stop after this much time',
      positiveOption('--stop-after-minutes'))
    .option('--threads <n>', 'threads for onnxruntime', intOption('--threads', 1, 256))
    .option('--json', 'print one JSON line per logged pass on stdout')
    .action(async (o: VaeOpts) => {
      const signals = stopOnSignal();
      const bar = trainBar('train vae |{bar}| {value}/{total} passes · loss {loss} · ETA {eta_formatted}', o.json);
      try {
        const r = await trainVae({
          ...runOptions(o),
          ...(o.exportOnly ? { exportOnly: true } : {}),
          say: (l) => {
            bar?.stop();
            process.stderr.write(`${l}\n`);
          },
          onLog: (row) => {
            if (o.json) process.stdout.write(`${JSON.stringify(row)}\n`);
          },
          onPass: (pass, total, row) => {
            if (!bar) return;
            if (pass === 1 || !bar.getProgress()) bar.start(total, pass);
            bar.update(pass, { loss: row.loss.toPrecision(4) });
          },
          stop: signals.requested,
        });
        bar?.stop();
        process.stderr.write(`${r.stopped ? 'stopped' : 'finished'} at pass ${r.pass} of ${r.totalPasses}; ` +
          `last checkpoint ${r.checkpoint ?? 'none'}${r.exported ? `; VAE in ${r.exported}` : ''}\n`);
      } finally {
        bar?.stop();
        signals.dispose();
      }
    });

  train
    .command('new-pipeline')
    .description('a multi-view diffusion pipeline with fresh weights around a trained VAE (to train from scratch)')
    .requiredOption('--recipe <file>', 'sizes of the UNet and image encoder (configs/demo/pipeline.yaml)')
    .requiredOption('--vae <dir>', 'a trained vae/ folder (facelift train vae)')
    .requiredOption('-o, --output <dir>', 'the pipeckpts/ folder to write')
    .action(async (o: { recipe: string; vae: string; output: string }) => {
      const r = await writeNewPipeline(o.recipe, o.vae, o.output);
      process.stderr.write(`wrote ${r.dir}: UNet ${r.unetParams.toLocaleString('en-US')} parameters, image encoder ` +
        `${r.encoderParams.toLocaleString('en-US')} (fresh), VAE from ${o.vae}\n`);
    });

  train
    .command('pack')
    .alias('pack-demo')
    .description('pack a trained pipeline and GS-LRM into a weights folder in the official layout (fp16 storage), ' +
      'for facelift infer --weights')
    .requiredOption('--pipeline <dir>', 'the exported pipeckpts/ (facelift train mvdiffusion)')
    .requiredOption('--gslrm <dir>', 'the GS-LRM run folder (its newest ckpt_*.pt is taken)')
    .requiredOption('--gslrm-config <file>', 'the GS-LRM training config')
    .option('-o, --output <dir>', 'weights folder to write mvdiffusion/ and gslrm/ into', 'models/demo')
    .action(async (o: { pipeline: string; gslrm: string; gslrmConfig: string; output: string }) => {
      const r = await packDemo({ pipeline: o.pipeline, gslrmRun: o.gslrm, gslrmConfig: o.gslrmConfig, out: o.output });
      for (const f of r.files) process.stderr.write(`${(f.bytes / 2 ** 20).toFixed(2).padStart(8)} MB  ${f.path}\n`);
      process.stderr.write(`${(r.bytes / 2 ** 20).toFixed(2)} MB in ${r.dir}\n`);
    });
}
