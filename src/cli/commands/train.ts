/**
 * `facelift train gslrm --config F [--resume | --load F] [--set key.path=value …] [--stop-after-minutes N]
 * [--threads N] [--json]`: trains the GS-LRM reconstructor (src/train/gslrm). SIGINT/SIGTERM finish the current
 * pass, write a checkpoint and exit; so does the time budget. Progress: a bar on stderr (step, loss, PSNR, steps/s,
 * ETA); with --json one JSON line per logged step on stdout.
 */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { trainGslrm } from '../../train/gslrm/run.ts';
import { intOption, positiveOption } from '../options.ts';

interface TrainOpts {
  config: string;
  set: string[];
  resume?: boolean;
  load?: string;
  stopAfterMinutes?: number;
  threads?: number;
  chunk?: number;
  turntableFrames: number;
  json?: boolean;
}

export function register(program: Command): void {
  const train = program.command('train').description('train the models (gslrm; mvdiffusion is not built yet)');
  train.command('gslrm')
    .description('train or fine-tune the GS-LRM reconstructor on posed multi-view samples (configs/gslrm*.yaml)')
    .requiredOption('--config <file>', 'training config in the official layout (configs/gslrm.yaml, …)')
    .option('--set <key=value>', 'override a config key, e.g. training.optimizer.lr=5e-5 (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--resume', 'require a checkpoint in the config\'s checkpoint_dir and continue from it')
    .option('--load <ckpt>', 'start from this checkpoint (full training state when it has one)')
    .option('--stop-after-minutes <n>', 'write a checkpoint and stop after this much time', positiveOption('--stop-after-minutes'))
    .option('--threads <n>', 'threads for onnxruntime and the rasterizer', intOption('--threads', 1, 256))
    .option('--chunk <n>', 'attention query chunk', intOption('--chunk', 1, 1 << 20))
    .option('--turntable-frames <n>', 'frames of the validation turntables (0: none)', intOption('--turntable-frames', 0, 1000), 150)
    .option('--json', 'print one JSON line per logged step on stdout')
    .action(async (o: TrainOpts) => {
      let stopRequested = false;
      const onSignal = (sig: NodeJS.Signals) => {
        if (stopRequested) process.exit(130);
        stopRequested = true;
        process.stderr.write(`\n${sig}: finishing this pass, then writing a checkpoint (send again to quit at once)\n`);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const bar = !o.json && process.stderr.isTTY
        ? new cliProgress.SingleBar({
          format: 'train gslrm |{bar}| {value}/{total} passes · loss {loss} · PSNR {psnr} dB · {rate} passes/s · ETA {eta_formatted}',
          stream: process.stderr, hideCursor: true,
        }, cliProgress.Presets.shades_classic)
        : null;
      const say = (l: string) => { if (bar) bar.stop(); process.stderr.write(`${l}\n`); };
      let t0 = 0, p0 = 0;
      try {
        const r = await trainGslrm({
          config: o.config, sets: o.set, ...(o.resume ? { resume: true } : {}), ...(o.load ? { load: o.load } : {}),
          ...(o.stopAfterMinutes !== undefined ? { stopAfterMinutes: o.stopAfterMinutes } : {}),
          ...(o.threads ? { threads: o.threads } : {}), ...(o.chunk ? { chunk: o.chunk } : {}),
          turntableFrames: o.turntableFrames, say,
          onLog: (row) => { if (o.json) process.stdout.write(`${JSON.stringify(row)}\n`); },
          onPass: (pass, total, row) => {
            if (!bar) return;
            if (t0 === 0) { t0 = performance.now(); p0 = pass - 1; bar.start(total, pass); }
            const rate = (pass - p0) / ((performance.now() - t0) / 1000);
            bar.update(pass, { loss: row.loss.toPrecision(4), psnr: row.psnr.toFixed(2), rate: rate.toFixed(3) });
          },
          stop: () => stopRequested,
        });
        bar?.stop();
        process.stderr.write(`${r.stopped ? 'stopped' : 'finished'} at pass ${r.pass} of ${r.totalPasses}; last checkpoint ${r.checkpoint ?? 'none'}\n`);
      } finally {
        bar?.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
