import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { MattingChoice } from '../../pipeline/models.ts';
import type { ModelChoice } from '../../pipeline/weights.ts';
import type { DetectorChoice } from '../../preprocess/index.ts';
import { startServer } from '../../server/app.ts';
import { IMAGE_STAGES } from '../../pipeline/events.ts';
import { ChildRunner } from '../../server/child-runner.ts';
import {
  GRADIO_TURNTABLE_FRAMES, PIPELINE_RUNNER_MODULE, pipelinePlan, type PipelineRunnerOptions,
} from '../../server/pipeline-runner.ts';
import { ensureWebBuilt, webBuildStale } from '../../server/web-build.ts';
import { UserError } from '../../util/errors.ts';
import { deviceOption, mattingOption, modelOption, pipelineRunnerOptions } from '../model-options.ts';
import { FileExchange } from '../../queue/exchange.ts';
import { RemoteRunner } from '../../queue/remote-runner.ts';
import { checkRedisUrl, redactUrl } from '../../queue/redis.ts';
import type { JobRunner } from '../../server/runner.ts';
import { intOption } from '../options.ts';

interface ServeOpts {
  port: number;
  host: string;
  weights?: string;
  queueSize: number;
  maxUploadMb: number;
  out: string;
  examples: string;
  keepJobs: number;
  promptEmbeds?: string;
  model: ModelChoice;
  matting?: MattingChoice;
  mattingModel?: string;
  detector: DetectorChoice;
  frames: number;
  threads?: number;
  device: 'auto' | 'cpu' | 'cuda';
  redis?: string;
  advertise?: string;
  attempts: number;
}


/** The repository's bundled example portraits. */
const BUNDLED_EXAMPLES = new URL('../../../examples', import.meta.url).pathname;

export function register(program: Command): void {
  program
    .command('serve')
    .description('web app: upload a portrait, watch it lift, orbit the 3D head (HTTP API + browser UI)')
    .option('--port <n>', 'port to listen on', intOption('--port', 0, 65535), 7860)
    .option('--host <addr>', 'address to listen on (0.0.0.0 to serve the network: there is no authentication)', '127.0.0.1')
    .option('--weights <dir>', 'weights folder in the official layout (mvdiffusion/pipeckpts/, gslrm/ckpt_*.pt); default: as facelift infer')
    .option('--redis <url>', 'run jobs on `facelift worker` machines through this Redis (redis://[:password@]host:6379, ' +
      'rediss:// for TLS) instead of in this process')
    .option('--advertise <url>', 'with --redis: the URL at which workers reach this server (default: http://HOST:PORT)')
    .option('--attempts <n>', 'with --redis: tries per job when workers die or fail', intOption('--attempts', 1, 100), 3)
    .option('--queue-size <n>', 'jobs that may wait behind the running one; more get HTTP 503', intOption('--queue-size', 1, 10_000), 10)
    .option('--max-upload-mb <n>', 'largest accepted photo, MB', intOption('--max-upload-mb', 1, 1024), 20)
    .option('--out <dir>', 'folder for uploads and results (one sub-folder per job)', 'outputs/web')
    .option('--examples <dir>', 'folder of example photos shown in the UI', BUNDLED_EXAMPLES)
    .option('--keep-jobs <n>', 'finished jobs whose files are kept (older ones are deleted)', intOption('--keep-jobs', 1, 1_000_000), 100)
    .option('--prompt-embeds <file>', "FaceLift's clr_embeds.pt (default: found in the weights folder, else computed and cached)")
    .addOption(mattingOption())
    .addOption(deviceOption())
    .addOption(modelOption())
    .option('--matting-model <file>', 'local model file for --matting (ONNX for modnet/u2net, .tflite for selfie)')
    .addOption(new Option('--detector <model>', 'face detector: MTCNN as the reference, or SSD').choices(['mtcnn', 'ssd']).default('mtcnn'))
    .option('--frames <n>', 'turntable frames (30 fps)', intOption('--frames', 1, 100_000), GRADIO_TURNTABLE_FRAMES)
    .option('--threads <n>', 'onnxruntime threads (default: all cores)', intOption('--threads', 1, 1024))
    .action(async (o: ServeOpts) => {
      if (!existsSync(o.examples)) throw new UserError(`--examples ${o.examples}: no such folder`);
      if (webBuildStale()) {
        process.stderr.write('building the web UI (web/ → web/dist)…\n');
        if (!ensureWebBuilt()) process.stderr.write('vite is not installed, so the web UI cannot be built; the JSON API works (install dev dependencies and run npm run build:web)\n');
      }
      // The models live in a worker process: the server stays responsive, and a crash there fails one job only.
      const options: PipelineRunnerOptions = { ...pipelineRunnerOptions(o), turntableFrames: o.frames };
      const plan = (settings: Parameters<typeof pipelinePlan>[0]) => pipelinePlan(settings, o.frames);
      let runner: JobRunner;
      let exchange: FileExchange | undefined;
      let advertised = o.advertise?.replace(/\/$/, '');
      if (o.redis && !o.advertise && ['0.0.0.0', '::'].includes(o.host)) {
        throw new UserError(`with --redis and --host ${o.host}, say where workers reach this server: --advertise http://NAME:${o.port}`);
      }
      if (o.redis) {
        // Jobs go to the workers; this server keeps the photos and takes the results on its file exchange.
        checkRedisUrl(o.redis);
        exchange = new FileExchange();
        runner = new RemoteRunner({
          redisUrl: o.redis, exchange, exchangeUrl: () => advertised ?? '', stages: IMAGE_STAGES, plan,
          post: { profile: 'gradio', frames: o.frames }, attempts: o.attempts,
        });
      } else {
        runner = new ChildRunner({
          module: PIPELINE_RUNNER_MODULE, options, stages: IMAGE_STAGES, plan,
          onLoadProgress: (e) => {
            if (e.step === 0 || e.step === e.total) process.stderr.write(`models: ${e.stage} ${e.step}/${e.total}${e.detail ? ` ${e.detail}` : ''}\n`);
          },
        });
      }
      let srv;
      try {
        srv = await startServer({
          runner, root: resolve(o.out), host: o.host, port: o.port, queueSize: o.queueSize, keepJobs: o.keepJobs,
          maxUploadBytes: o.maxUploadMb * 2 ** 20, examplesDir: o.examples,
          ...(exchange ? { exchange, concurrency: o.queueSize } : {}),
        });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new UserError(`port ${o.port} on ${o.host} is in use; pick another with --port`);
        if (code === 'EACCES') throw new UserError(`not allowed to listen on ${o.host}:${o.port}; use a port above 1023`);
        throw e;
      }
      advertised ??= srv.url;
      if (o.redis) {
        process.stderr.write(`facelift web app on ${srv.url}: jobs go to the workers through ${redactUrl(o.redis)}; ` +
          `workers fetch photos and send results to ${advertised} (set --advertise if they reach it by another address)\n`);
      } else {
        process.stderr.write(`facelift web app on ${srv.url} (jobs in ${resolve(o.out)}; models loading in the background)\n`);
      }
      runner.ready().then(() => process.stderr.write(o.redis ? 'connected to Redis\n' : 'models ready\n'), () => {});
      const stop = () => {
        process.stderr.write('shutting down: waiting for the running job to finish (press Ctrl-C again to stop now)…\n');
        process.once('SIGINT', () => process.exit(130));
        void srv.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await new Promise<void>((r) => srv.server.once('close', () => r()));
    });
}
