/**
 * `facelift worker`: takes portrait jobs from the Redis queue and runs them. The models live in child processes
 * (ChildRunner, loaded once per slot), so this process's event loop stays free to renew each job's lock while the
 * CPU is busy; a worker that dies mid-job stops renewing, and BullMQ hands the job to another worker. Each attempt
 * works in a folder of its own under the worker's working directory and is removed afterwards; files go back to
 * the job's exchange over HTTP.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IMAGE_STAGES } from '../pipeline/events.ts';
import { ChildRunner } from '../server/child-runner.ts';
import { PIPELINE_RUNNER_MODULE, type PipelineRunnerOptions } from '../server/pipeline-runner.ts';
import type { JobRunner, StageEvent } from '../server/runner.ts';
import { UserError } from '../util/errors.ts';
import { QUEUE_NAME, RESULT_NAMES, decodeJob, type RemoteJobData } from './protocol.ts';
import { connect, redactUrl, waitReady } from './redis.ts';

/** Largest photo a worker downloads (the web app's upload limit is 20 MiB). */
const MAX_PHOTO = 64 * 2 ** 20;

export interface WorkerOptions {
  redisUrl: string;
  /** Jobs at once; each slot holds its own copy of the models (default 1). */
  concurrency?: number;
  /** The pipeline's options (weights, matting, threads…); turntable frames and filters come with each job. */
  pipeline: PipelineRunnerOptions;
  /** Folder for the jobs' working folders (one per attempt, removed after it). */
  workDir: string;
  /** How long a job stays locked without renewal before another worker may take it, ms (default 30 s). */
  lockMs?: number;
  log?: (line: string) => void;
  /** A runner per slot (tests); default: the real pipeline in a child process. */
  makeRunner?: () => JobRunner;
}

export interface RunningWorker {
  /** Jobs finished (committed or already committed by another worker) and failed here. */
  readonly counts: { done: number; failed: number };
  close(): Promise<void>;
}

async function exchangeFetch(d: RemoteJobData, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = { ...(init.headers as Record<string, string> | undefined), Authorization: `Bearer ${d.token}` };
  let res: Response;
  try {
    res = await fetch(`${d.exchange}${path}`, { ...init, headers, signal: AbortSignal.timeout(10 * 60_000) });
  } catch (e) {
    throw new Error(`cannot reach the job's exchange at ${d.exchange}: ${(e as Error).message}`);
  }
  return res;
}

async function reason(res: Response): Promise<string> {
  try {
    return ((await res.json()) as { error?: string }).error ?? `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

/** The photo into `file`, refusing anything over MAX_PHOTO. */
async function download(d: RemoteJobData, file: string): Promise<void> {
  const res = await exchangeFetch(d, `/api/worker/jobs/${d.id}/input`);
  if (res.status === 404) throw new UnrecoverableError('the job is no longer offered by its server (it was withdrawn)');
  if (!res.ok || !res.body) throw new Error(`the exchange refused the photo: ${await reason(res)}`);
  if (Number(res.headers.get('content-length') ?? 0) > MAX_PHOTO) throw new UnrecoverableError('the photo is too large');
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(file));
}

/** Sends the result folder; true when this attempt's result was taken, false when another had been first. */
async function upload(d: RemoteJobData, dir: string): Promise<boolean> {
  const attempt = randomBytes(12).toString('base64url');
  const base = `/api/worker/jobs/${d.id}/attempts/${attempt}`;
  const names = (await readdir(dir)).filter((n) => (RESULT_NAMES as readonly string[]).includes(n));
  for (const name of names) {
    const file = join(dir, name);
    const size = (await stat(file)).size;
    const res = await exchangeFetch(d, `${base}/files/${name}`, {
      method: 'PUT', body: Readable.toWeb(createReadStream(file)) as unknown as RequestInit['body'],
      headers: { 'Content-Length': String(size), 'Content-Type': 'application/octet-stream' },
      duplex: 'half',
    } as RequestInit);
    if (res.status === 409) return false;
    if (!res.ok) throw new Error(`the exchange refused ${name}: ${await reason(res)}`);
  }
  const res = await exchangeFetch(d, `${base}/commit`, { method: 'POST' });
  if (res.status === 409) return false;
  if (!res.ok) throw new Error(`the exchange refused the result: ${await reason(res)}`);
  return true;
}

/** A pool of runners, one per slot, each used by one job at a time. */
class Slots {
  private readonly free: JobRunner[];
  constructor(readonly all: JobRunner[]) {
    this.free = [...all];
  }
  take(): JobRunner {
    const r = this.free.pop();
    if (!r) throw new Error('no free model slot (more jobs than --concurrency)');
    return r;
  }
  give(r: JobRunner): void {
    this.free.push(r);
  }
}

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const concurrency = o.concurrency ?? 1;
  await mkdir(o.workDir, { recursive: true });
  const probe = connect(o.redisUrl);
  try {
    await waitReady(probe, o.redisUrl);
  } finally {
    probe.disconnect();
  }
  const make = o.makeRunner ?? (() => new ChildRunner({ module: PIPELINE_RUNNER_MODULE, options: o.pipeline, stages: IMAGE_STAGES }));
  const slots = new Slots(Array.from({ length: concurrency }, make));
  // Models load before the first job is taken: a worker that cannot load them takes nothing.
  await Promise.all(slots.all.map((r) => r.ready()));
  const counts = { done: 0, failed: 0 };

  const processor = async (job: Job): Promise<void> => {
    let d: RemoteJobData;
    try {
      d = decodeJob(job.data);
    } catch (e) {
      throw new UnrecoverableError((e as Error).message);
    }
    const dir = await mkdtemp(join(o.workDir, `${d.id}-`));
    const runner = slots.take();
    log(`job ${d.id}: started (attempt ${job.attemptsMade + 1}${job.attemptsStarted > 1 ? `, start ${job.attemptsStarted}` : ''})`);
    try {
      const input = join(dir, `photo.${d.format === 'jpeg' ? 'jpg' : d.format}`);
      await download(d, input);
      let last = 0;
      const report = (e: StageEvent) => {
        // Stage starts and ends always; steps in between at most 4 times a second.
        const now = Date.now();
        if (e.step !== 0 && e.step < e.total && now - last < 250) return;
        last = now;
        void job.updateProgress(e).catch(() => {});
      };
      const outDir = join(dir, 'result');
      const post = d.post.profile === 'gradio' ? 'gradio' : 'infer';
      try {
        await runner.run({ id: d.id, input, outDir, settings: d.settings, post: { profile: post, frames: d.post.frames } }, report);
      } catch (e) {
        // A photo the pipeline cannot use fails the same on every worker: no retries.
        if (e instanceof UserError) throw new UnrecoverableError(e.message);
        throw e;
      }
      const mine = await upload(d, outDir);
      counts.done++;
      log(`job ${d.id}: ${mine ? 'done' : 'done (another worker had already sent its result)'}`);
    } catch (e) {
      counts.failed++;
      log(`job ${d.id} failed (attempt ${job.attemptsMade + 1}): ${(e as Error).message}`);
      throw e;
    } finally {
      slots.give(runner);
      await rm(dir, { recursive: true, force: true });
    }
  };

  const lockDuration = o.lockMs ?? 30_000;
  const worker = new Worker(QUEUE_NAME, processor, {
    connection: connect(o.redisUrl, { blocking: true }),
    concurrency,
    lockDuration,
    stalledInterval: lockDuration,
    maxStalledCount: 2,
    autorun: true,
  });
  worker.on('error', (e) => log(`redis: ${e.message} (${redactUrl(o.redisUrl)}; reconnecting)`));
  log(`worker ready: ${concurrency} slot(s), queue ${QUEUE_NAME} on ${redactUrl(o.redisUrl)}`);
  return {
    counts,
    close: async () => {
      await worker.close();
      await Promise.all(slots.all.map((r) => r.close()));
    },
  };
}
