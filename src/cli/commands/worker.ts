import { Option, type Command } from 'commander';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startWorker } from '../../queue/worker.ts';
import { deviceOption, mattingOption, modelOption, pipelineRunnerOptions, type ModelFlags } from '../model-options.ts';
import { intOption } from '../options.ts';

interface WorkerOpts extends ModelFlags {
  redis: string;
  concurrency: number;
  workDir?: string;
  lockMs: number;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('take portrait jobs from a Redis queue (facelift serve --redis, facelift infer --redis) and run them')
    .requiredOption('--redis <url>', 'the queue: redis://[:password@]host:6379[/db], rediss:// for TLS')
    .option('--concurrency <n>', 'jobs at once; each holds its own copy of the models in memory', intOption('--concurrency', 1, 64), 1)
    .option('--weights <dir>', 'weights folder in the official layout; default: as facelift infer')
    .option('--prompt-embeds <file>', "FaceLift's clr_embeds.pt (default: found in the weights folder, else computed and cached)")
    .addOption(mattingOption())
    .addOption(deviceOption())
    .addOption(modelOption())
    .option('--matting-model <file>', 'local model file for --matting (ONNX for modnet/u2net, .tflite for selfie)')
    .addOption(new Option('--detector <model>', 'face detector').choices(['mtcnn', 'ssd']).default('mtcnn'))
    .option('--threads <n>', 'onnxruntime threads per job (default: all cores)', intOption('--threads', 1, 1024))
    .option('--work-dir <dir>', 'where jobs are worked on, one folder per attempt (default: a new folder under the system temp folder)')
    .addOption(new Option('--lock-ms <n>', 'how long a job stays locked to a silent worker before another may take it, ms')
      .argParser(intOption('--lock-ms', 1000, 3_600_000)).default(30_000))
    .action(async (o: WorkerOpts) => {
      const pipeline = pipelineRunnerOptions(o);
      // Each worker process works in a folder of its own, so workers on one machine never share files.
      const parent = o.workDir ? resolve(o.workDir) : tmpdir();
      mkdirSync(parent, { recursive: true });
      const workDir = mkdtempSync(join(parent, o.workDir ? 'worker-' : 'facelift-worker-'));
      const w = await startWorker({ redisUrl: o.redis, concurrency: o.concurrency, pipeline, workDir, lockMs: o.lockMs });
      const stop = () => {
        process.stderr.write('worker stopping: finishing the running job(s) (press Ctrl-C again to stop now)…\n');
        process.once('SIGINT', () => process.exit(130));
        void w.close().then(() => {
          rmSync(workDir, { recursive: true, force: true });
          process.exit(0);
        });
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await new Promise(() => {});
    });
}
