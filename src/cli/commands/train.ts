/**
 * `facelift train mvdiffusion --config F [--set key=value …] [--resume] [--export-only] [--stop-after-minutes N]
 * [--threads N] [--json]`: trains the multi-view diffusion UNet (src/train/mvdiffusion).
 * `facelift train gslrm --config F [--resume | --load F] [--set key.path=value …] [--stop-after-minutes N]
 * [--threads N] [--json]`: trains the GS-LRM reconstructor (src/train/gslrm). SIGINT/SIGTERM finish the current
 * pass, write a checkpoint and exit; so does the time budget. Progress: a bar on stderr (step, loss, PSNR, steps/s,
 * ETA); with --json one JSON line per logged step on stdout.
 */
import type { Command } from 'commander';
import { trainGslrm } from '../../train/gslrm/run.ts';
import { trainMvDiffusion } from '../../train/mvdiffusion/run.ts';
import { readYamlTree } from '../../train/config-tree.ts';
import { listCheckpoints, readCheckpoint } from '../../train/checkpoint.ts';
import { parseGslrmTrainConfig } from '../../train/gslrm/config.ts';
import { readSampleList } from '../../train/gslrm/dataset.ts';
import { evaluateHeldOut } from '../../train/gslrm/evaluate.ts';
import { GslrmTrainStep } from '../../train/gslrm/step.ts';
import { UserError } from '../../util/errors.ts';
import { statSync } from 'node:fs';
import { intOption, positiveOption } from '../options.ts';
import { registerVae } from './train-demo.ts';
import { runOptions, stopOnSignal, trainBar } from '../train-session.ts';

interface TrainOpts {
  config: string;
  set: string[];
  resume?: boolean;
  load?: string;
  stopAfterMinutes?: number;
  stopAtPass?: number;
  threads?: number;
  chunk?: number;
  device: string;
  turntableFrames: number;
  turntableSamples?: number;
  vgg19?: string;
  lpipsVgg16?: string;
  lpipsLin?: string;
  json?: boolean;
}

/** The options only `train mvdiffusion` has. */
interface MvCliOpts {
  exportOnly?: boolean;
  optimizerWorkers?: number;
}

export function register(program: Command): void {
  const train = program.command('train').description('train the models (gslrm, mvdiffusion, vae)');
  registerMvDiffusion(train);
  registerVae(train);
  train
    .command('gslrm')
    .description('train or fine-tune the GS-LRM reconstructor on posed multi-view samples (configs/gslrm*.yaml)')
    .requiredOption('--config <file>', 'training config in the official layout (configs/gslrm.yaml, …)')
    .option(
      '--set <key=value>',
      'override a config key, e.g. training.optimizer.lr=5e-5 (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .option('--resume', "require a checkpoint in the config's checkpoint_dir and continue from it")
    .option('--load <ckpt>', 'start from this checkpoint (full training state when it has one)')
    .option(
      '--stop-after-minutes <n>',
      'write a checkpoint and stop after this much time',
      positiveOption('--stop-after-minutes'),
    )
    .option('--stop-at-pass <n>', 'write a checkpoint and stop once this many passes are done (the schedule is kept)',
      intOption('--stop-at-pass', 1, Number.MAX_SAFE_INTEGER))
    .option('--threads <n>', 'threads for onnxruntime and the rasterizer', intOption('--threads', 1, 256))
    .option('--chunk <n>', 'attention query block of the backward pass', intOption('--chunk', 1, 1 << 20))
    .option('--device <device>', "where the network trains: cpu, or cuda (onnxruntime-node's CUDA provider)", 'cpu')
    .option(
      '--vgg19 <file.mat>',
      'MatConvNet imagenet-vgg-verydeep-19.mat for the perceptual loss (default $VGG19_WEIGHTS_PATH) when the starting checkpoint has no VGG-19',
    )
    .option(
      '--turntable-frames <n>',
      'frames of the validation turntables (0: none)',
      intOption('--turntable-frames', 0, 1000),
      150,
    )
    .option(
      '--turntable-samples <n>',
      'validation samples that get a turntable (the first n; default all)',
      intOption('--turntable-samples', 0, 1 << 20),
    )
    .option('--json', 'print one JSON line per logged step on stdout')
    .action(async (o: TrainOpts) => {
      const signals = stopOnSignal();
      const bar = trainBar(
        'train gslrm |{bar}| {value}/{total} passes · loss {loss} · PSNR {psnr} dB · {rate} passes/s · ETA {eta_formatted}',
        o.json,
      );
      const say = (l: string) => {
        if (bar) bar.stop();
        process.stderr.write(`${l}\n`);
      };
      let t0 = 0,
        p0 = 0,
        lastPass = 0;
      try {
        const r = await trainGslrm({
          ...runOptions(o),
          ...(o.load ? { load: o.load } : {}),
          ...(o.chunk ? { chunk: o.chunk } : {}),
          device: deviceOption(o.device),
          turntableFrames: o.turntableFrames,
          ...(o.turntableSamples !== undefined ? { turntableSamples: o.turntableSamples } : {}),
          ...(o.vgg19 ? { vgg19: o.vgg19 } : {}),
          ...(o.lpipsVgg16 || o.lpipsLin ? { lpips: lpipsPair(o.lpipsVgg16, o.lpipsLin) } : {}),
          say,
          onLog: (row) => {
            if (o.json) process.stdout.write(`${JSON.stringify(row)}\n`);
          },
          onPass: (pass, total, row) => {
            lastPass = pass;
            if (!bar) return;
            if (t0 === 0) {
              t0 = performance.now();
              p0 = pass - 1;
              bar.start(total, pass);
            }
            const rate = (pass - p0) / ((performance.now() - t0) / 1000);
            bar.update(pass, { loss: row.loss.toPrecision(4), psnr: row.psnr.toFixed(2), rate: rate.toFixed(3) });
          },
          stop: () => signals.requested() || (o.stopAtPass !== undefined && lastPass >= o.stopAtPass),
        });
        bar?.stop();
        process.stderr.write(
          `${r.stopped ? 'stopped' : 'finished'} at pass ${r.pass} of ${r.totalPasses}; last checkpoint ${r.checkpoint ?? 'none'}\n`,
        );
      } finally {
        bar?.stop();
        signals.dispose();
      }
    });

  program
    .command('eval')
    .description('evaluate trained models on held-out data')
    .command('gslrm')
    .description(
      'held-out samples reconstructed from fixed rig views, scored at every other rig camera (PSNR/SSIM) next to ' +
        'an all-white image and the mean training view',
    )
    .requiredOption('--config <file>', 'the training config (its model section and input-view count)')
    .requiredOption('--checkpoint <file|dir>', 'a ckpt_*.pt, or a run folder (its newest checkpoint)')
    .requiredOption('--held <list>', 'list file of held-out sample folders')
    .requiredOption('--train <list>', 'list file of the training samples (for the mean-view baseline)')
    .option('--inputs <views>', 'comma-separated input rig views', '0,8,16,24')
    .option(
      '--pictures <n>',
      'write inputs and gt-vs-prediction strips of the first n samples',
      intOption('--pictures', 0, 10000),
      0,
    )
    .option('-o, --output <dir>', 'folder for the pictures')
    .option('--threads <n>', 'threads', intOption('--threads', 1, 256))
    .option('--json', 'print the scores as JSON')
    .action(
      async (o: {
        config: string;
        checkpoint: string;
        held: string;
        train: string;
        inputs: string;
        pictures: number;
        output?: string;
        threads?: number;
        json?: boolean;
      }) => {
        const { config } = parseGslrmTrainConfig(readYamlTree(o.config), o.config);
        let file = o.checkpoint;
        try {
          if (statSync(file).isDirectory()) file = listCheckpoints(file)[0] ?? '';
        } catch {
          throw new UserError(`no checkpoint at ${o.checkpoint}`);
        }
        if (!file) throw new UserError(`no ckpt_*.pt in ${o.checkpoint}`);
        const inputs = o.inputs.split(',').map(Number);
        if (inputs.some((v) => !Number.isInteger(v) || v < 0))
          throw new UserError(`--inputs must be rig view numbers, got ${o.inputs}`);
        const ckpt = await readCheckpoint(file);
        const step = await GslrmTrainStep.create(
          { ...config, dataset: { ...config.dataset, numInputViews: inputs.length } },
          ckpt.model,
          o.threads ? { threads: o.threads } : {},
        );
        try {
          const r = await evaluateHeldOut(
            step,
            { ...config, dataset: { ...config.dataset, numInputViews: inputs.length } },
            readSampleList(o.train),
            readSampleList(o.held),
            { inputs, pictures: o.pictures, ...(o.output ? { picturesDir: o.output } : {}) },
          );
          if (o.json) process.stdout.write(`${JSON.stringify({ checkpoint: file, ...r })}\n`);
          else {
            process.stdout.write(
              `${r.samples} held-out samples × ${r.views} held-out cameras (inputs ${inputs.join(', ')}):\n`,
            );
            for (const [k, v] of [
              ['model', r.model],
              ['all-white', r.white],
              ['mean training view', r.meanView],
            ] as const) {
              process.stdout.write(`  ${k.padEnd(20)} PSNR ${v.psnr.toFixed(2)} dB  SSIM ${v.ssim.toFixed(4)}\n`);
            }
          }
        } finally {
          await step.close();
        }
      },
    );
}

function lpipsPair(vgg16: string | undefined, lin: string | undefined): { vgg16: string; lin: string } {
  if (!vgg16 || !lin) throw new UserError('LPIPS needs both --lpips-vgg16 (torchvision vgg16) and --lpips-lin (LPIPS v0.1 vgg.pth)');
  return { vgg16, lin };
}

function deviceOption(d: string): 'cpu' | 'cuda' {
  if (d === 'cpu' || d === 'cuda') return d;
  throw new UserError(`--device must be cpu or cuda, got ${d}`);
}

function registerMvDiffusion(train: Command): void {
  train
    .command('mvdiffusion')
    .description(
      'train or fine-tune the multi-view diffusion UNet from a FaceLift pipeline or SD-2.1-unCLIP (configs/mvdiffusion.yaml, mouse_mvdiffusion*.yaml)',
    )
    .requiredOption('--config <file>', 'training config in the official layout (configs/mvdiffusion.yaml, …)')
    .option(
      '--set <key=value>',
      'override a config key, e.g. learning_rate=5e-5 or train_dataset.path=LIST (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .option('--resume', 'require a checkpoint-<n> in the output folder and continue from it')
    .option('--export-only', "write <output_dir>/pipeckpts from the newest checkpoint's EMA weights, no training")
    .option(
      '--stop-after-minutes <n>',
      'write a checkpoint and stop after this much time',
      positiveOption('--stop-after-minutes'),
    )
    .option('--threads <n>', 'threads for onnxruntime and the optimizer', intOption('--threads', 1, 256))
    .option('--optimizer-workers <n>', 'optimizer worker threads (default threads − 1; 0 keeps the weights out of ' +
      "shared memory, saving a copy of them: the official UNet's 3.5 GB)", intOption('--optimizer-workers', 0, 256))
    .option('--chunk <n>', 'attention query block of the recomputed backward', intOption('--chunk', 1, 1 << 20))
    .option('--device <device>', "where the UNet trains: cpu, or cuda (onnxruntime-node's CUDA provider)", 'cpu')
    .option('--lpips-vgg16 <file>', "torchvision's vgg16-397923af.pth (with --lpips-lin: LPIPS in validation)")
    .option('--lpips-lin <file>', 'LPIPS v0.1 vgg.pth')
    .option('--json', 'print one JSON line per logged update on stdout')
    .action(async (o: Omit<TrainOpts, 'load' | 'turntableFrames' | 'vgg19'> & MvCliOpts) => {
      const signals = stopOnSignal();
      const bar = trainBar(
        'train mvdiffusion |{bar}| {value}/{total} passes · loss {loss} · {rate} passes/s · ETA {eta_formatted}',
        o.json,
      );
      const say = (l: string) => {
        if (bar) bar.stop();
        process.stderr.write(`${l}\n`);
      };
      let t0 = 0,
        p0 = 0;
      try {
        const r = await trainMvDiffusion({
          ...runOptions(o),
          ...(o.exportOnly ? { exportOnly: true } : {}),
          ...(o.optimizerWorkers !== undefined ? { optimizerWorkers: o.optimizerWorkers } : {}),
          ...(o.chunk ? { chunk: o.chunk } : {}),
          device: deviceOption(o.device),
          ...(o.lpipsVgg16 || o.lpipsLin ? { lpips: lpipsPair(o.lpipsVgg16, o.lpipsLin) } : {}),
          say,
          onLog: (row) => {
            if (o.json) process.stdout.write(`${JSON.stringify(row)}\n`);
          },
          onPass: (pass, total, row) => {
            if (!bar) return;
            if (t0 === 0) {
              t0 = performance.now();
              p0 = pass - 1;
              bar.start(total, pass);
            }
            const rate = (pass - p0) / ((performance.now() - t0) / 1000);
            bar.update(pass, { loss: row.loss.toPrecision(4), rate: rate.toFixed(3) });
          },
          stop: signals.requested,
        });
        bar?.stop();
        if (!o.exportOnly)
          process.stderr.write(
            `${r.stopped ? 'stopped' : 'finished'} at pass ${r.pass} of ${r.totalPasses}; last checkpoint ${r.checkpoint ?? 'none'}\n`,
          );
      } finally {
        bar?.stop();
        signals.dispose();
      }
    });
}
