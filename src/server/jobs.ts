/**
 * The job queue: uploads wait in a bounded FIFO and run one at a time on the single model instance (like gradio's
 * queue(max_size=10)); every change of a job is pushed to its listeners (the SSE streams) as a JobView. Finished
 * jobs keep their folder until `keep` newer ones have finished, then the oldest is deleted.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';
import { calibrate, estimate, type PlannedStage, type StageCost, type StageProgress } from '../pipeline/estimate.ts';
import { RESULT_FILES, type JobRunner, type ResultFile, type StageEvent } from './runner.ts';
import type { JobSettings } from './settings.ts';
import { VIEWER_FILE } from './viewer-file.ts';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface StageView {
  name: string;
  state: 'pending' | 'running' | 'done';
  step: number;
  total: number;
  detail?: string;
  /** Duration once done, milliseconds. */
  ms?: number;
}

/** What clients see of a job (GET /api/jobs/:id and every SSE message). */
export interface JobView {
  id: string;
  status: JobStatus;
  /** Jobs ahead of this one while queued (0: next to run); null otherwise. */
  position: number | null;
  settings: JobSettings;
  stages: StageView[];
  /** Share of the job's expected work done, 0..1 (stages weighted by their expected time). */
  progress: number;
  /** Milliseconds since the job started running (absent while queued). */
  elapsedMs?: number;
  /**
   * Expected milliseconds left while running, from the measured speed (pipeline/estimate.ts); null while nothing
   * measured says how fast this run goes yet.
   */
  remainingMs?: number | null;
  /** Why the job failed, in plain words. */
  error?: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** URLs of the result files and of the zip of all, once done. */
  files?: Record<ResultFile, string>;
  /** The Gaussians for the browser's splat viewer (see viewer-file.ts). */
  viewer?: string;
  zip?: string;
}

export type JobListener = (view: JobView) => void;

interface Job {
  id: string;
  dir: string;
  input: string;
  status: JobStatus;
  settings: JobSettings;
  /** `started`, `stepAt`: performance.now() when the stage started and when it reported its latest step. */
  stages: Array<StageView & { started?: number; stepAt?: number }>;
  /** The expected work per stage, fixed when the job starts (weights of the progress bar). */
  plan?: PlannedStage[];
  /** Its plan's costs were measured by an earlier job on this server. */
  calibrated?: boolean;
  /** Handed to a remote runner: jobs ahead of it in that queue (null until known). */
  remotePosition?: number | null;
  error?: string;
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  inputWritten: Promise<void>;
  listeners: Set<JobListener>;
}

/** The queue is full; the HTTP layer answers 503 with this message. */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

export interface JobQueueOptions {
  runner: JobRunner;
  /** Folder that holds one sub-folder per job. */
  root: string;
  /** Jobs that may wait behind the running one (default 10). */
  capacity?: number;
  /**
   * Jobs handed to the runner at once (default 1). A remote runner (Redis) takes up to `capacity` and reports
   * each job's place in its own queue until a worker starts it.
   */
  concurrency?: number;
  /** Finished jobs whose files are kept (default 100). */
  keep?: number;
  /** Where unexpected job errors are logged (default console.error). */
  log?: (message: string) => void;
}

/** 128 random bits, URL-safe: ids cannot be guessed or enumerated. */
export function newJobId(): string {
  return randomBytes(16).toString('base64url');
}
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export function resultUrl(id: string, file: ResultFile): string {
  return `/api/jobs/${id}/files/${file}`;
}

export class JobQueue {
  readonly capacity: number;
  private readonly keep: number;
  private readonly jobs = new Map<string, Job>();
  private readonly waiting: Job[] = [];
  private readonly running = new Map<Job, Promise<void>>();
  private readonly concurrency: number;
  private closed = false;
  private readonly log: (message: string) => void;
  /** Stage costs measured by the last finished job: the next job's estimates start from them. */
  private learned: Record<string, StageCost> = {};

  constructor(private readonly opts: JobQueueOptions) {
    this.capacity = opts.capacity ?? 10;
    this.keep = opts.keep ?? 100;
    if (!(Number.isInteger(this.capacity) && this.capacity >= 1)) throw new UserError(`queue size must be a whole number ≥ 1, got ${this.capacity}`);
    this.log = opts.log ?? ((m) => console.error(m));
    this.concurrency = opts.concurrency ?? 1;
  }

  /** Jobs not started yet (waiting here, or in a remote runner's queue). */
  get waitingCount(): number {
    let n = this.waiting.length;
    for (const job of this.running.keys()) if (job.status === 'queued') n++;
    return n;
  }

  /** Queues a job for the photo `bytes` (format from its first bytes); throws QueueFullError when full. */
  submit(bytes: Uint8Array, format: string, settings: JobSettings): JobView {
    if (this.closed) throw new QueueFullError('the server is shutting down; try again later');
    if (this.waitingCount >= this.capacity) {
      throw new QueueFullError(`the queue is full (${this.capacity} jobs are waiting); please try again in a few minutes`);
    }
    const id = newJobId();
    const dir = join(this.opts.root, id);
    const input = join(dir, `upload.${format === 'jpeg' ? 'jpg' : format}`);
    const stages = this.opts.runner.stages.map((name) => ({ name, state: 'pending' as const, step: 0, total: 1 }));
    const job: Job = {
      id, dir, input, status: 'queued', settings, stages, createdAt: new Date(), listeners: new Set(),
      inputWritten: mkdir(dir, { recursive: true }).then(() => writeFile(input, bytes)),
    };
    job.inputWritten.catch(() => {}); // awaited (and reported) when the job runs
    this.jobs.set(id, job);
    this.waiting.push(job);
    this.pump();
    return this.view(job);
  }

  get(id: string): JobView | undefined {
    const job = this.jobs.get(id);
    return job && this.view(job);
  }

  /** The folder of a finished job's files (undefined unless done). */
  resultDir(id: string): string | undefined {
    const job = this.jobs.get(id);
    return job?.status === 'done' ? join(job.dir, 'result') : undefined;
  }

  /** Calls `listener` on every change of the job until the returned function is called. */
  subscribe(id: string, listener: JobListener): () => void {
    const job = this.jobs.get(id);
    if (!job) return () => {};
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  /** Refuses new jobs, fails the waiting ones, waits for the running one and closes the runner. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) this.finish(job, 'failed', 'the server shut down before this job started');
    if (this.opts.runner.remote) {
      // Remote jobs end when their runner withdraws them.
      await this.opts.runner.close();
      await Promise.all(this.running.values());
      return;
    }
    await Promise.all(this.running.values());
    await this.opts.runner.close();
  }

  private pump(): void {
    while (this.running.size < this.concurrency && !this.closed) {
      const job = this.waiting.shift();
      if (!job) return;
      for (const w of this.waiting) this.notify(w);
      this.running.set(job, this.execute(job).finally(() => {
        this.running.delete(job);
        this.evict();
        this.pump();
      }));
    }
  }

  private start(job: Job): void {
    job.status = 'running';
    job.startedAt = new Date();
  }

  private async execute(job: Job): Promise<void> {
    // A remote runner's jobs wait in its queue until a worker reports their first stage.
    if (this.opts.runner.remote) job.remotePosition = null;
    else this.start(job);
    job.plan = this.opts.runner.plan?.(job.settings).map((p) => ({ ...p, cost: this.learned[p.stage] ?? p.cost }));
    job.calibrated = job.plan?.every((p) => p.stage in this.learned) ?? false;
    this.notify(job);
    let stageName: string | undefined;
    try {
      await job.inputWritten;
      try {
        await this.opts.runner.ready();
      } catch (e) {
        throw new UserError(`the models could not be loaded, so no job can run: ${messageOf(e)}`, { cause: e });
      }
      const req = { id: job.id, input: job.input, outDir: join(job.dir, 'result'), settings: job.settings };
      await this.opts.runner.run(req, (e) => {
        stageName = e.stage;
        if (job.status === 'queued') this.start(job);
        this.onProgress(job, e);
      }, {
        onPosition: (ahead) => {
          if (job.status !== 'queued' || job.remotePosition === ahead) return;
          job.remotePosition = ahead;
          this.notify(job);
        },
      });
      if (job.plan) this.learned = calibrate(job.plan, this.progressOf(job, performance.now()));
      this.finish(job, 'done');
    } catch (e) {
      if (!(e instanceof UserError)) this.log(`job ${job.id} failed${stageName ? ` in ${stageName}` : ''}: ${(e as Error)?.stack ?? String(e)}`);
      const where = stageName && !(e instanceof UserError) ? ` during ${stageName}` : '';
      this.finish(job, 'failed', `The job failed${where}: ${withoutPaths(messageOf(e))}`);
    }
  }

  private onProgress(job: Job, e: StageEvent): void {
    let i = job.stages.findIndex((s) => s.name === e.stage);
    if (i < 0) i = job.stages.push({ name: e.stage, state: 'pending', step: 0, total: 1 }) - 1;
    const now = performance.now();
    job.stages.forEach((s, k) => {
      if (k < i && s.state !== 'done') Object.assign(s, { state: 'done', step: s.total });
    });
    const s = job.stages[i]!;
    if (s.state !== 'running') s.started = now;
    if (e.step !== s.step || s.stepAt === undefined) s.stepAt = now;
    s.step = e.step;
    s.total = Math.max(1, e.total);
    if (e.detail !== undefined) s.detail = e.detail;
    if (e.step >= e.total) {
      s.state = 'done';
      s.ms = Math.round(now - (s.started ?? now));
    } else {
      s.state = 'running';
    }
    this.notify(job);
  }

  private finish(job: Job, status: 'done' | 'failed', error?: string): void {
    job.status = status;
    job.finishedAt = new Date();
    if (error !== undefined) job.error = error;
    if (status === 'done') for (const s of job.stages) Object.assign(s, { state: 'done', step: s.total });
    this.notify(job);
    job.listeners.clear();
  }

  /** Deletes the oldest finished jobs beyond `keep`. */
  private evict(): void {
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt).sort((a, b) => a.finishedAt!.getTime() - b.finishedAt!.getTime());
    for (const job of finished.slice(0, Math.max(0, finished.length - this.keep))) {
      this.jobs.delete(job.id);
      rm(job.dir, { recursive: true, force: true }).catch((e) => this.log(`could not delete ${job.dir}: ${messageOf(e)}`));
    }
  }

  private notify(job: Job): void {
    if (job.listeners.size === 0) return;
    const v = this.view(job);
    for (const l of job.listeners) l(v);
  }

  private progressOf(job: Job, now: number): StageProgress[] {
    return job.stages.map((s) => ({
      stage: s.name, state: s.state, step: s.step, total: s.total,
      elapsedMs: s.state === 'done' ? (s.ms ?? 0) : s.state === 'running' ? now - (s.started ?? now) : 0,
      ...(s.state === 'running' ? { atStepMs: (s.stepAt ?? now) - (s.started ?? now) } : {}),
    }));
  }

  private view(job: Job): JobView {
    const now = performance.now();
    const plan = job.plan ?? job.stages.map((s) => ({ stage: s.name, steps: 1, cost: { fixedMs: 1, perStepMs: 0 } }));
    const est = estimate(plan, this.progressOf(job, now), { calibrated: job.calibrated === true });
    const v: JobView = {
      id: job.id,
      status: job.status,
      position: job.status !== 'queued' ? null
        : job.remotePosition !== undefined ? job.remotePosition
        : this.waiting.indexOf(job),
      settings: job.settings,
      stages: job.stages.map(({ started: _s, stepAt: _a, ...s }) => ({ ...s })),
      progress: job.status === 'done' ? 1 : est.fraction,
      createdAt: job.createdAt.toISOString(),
    };
    if (job.startedAt) v.elapsedMs = Math.round((job.finishedAt ?? new Date()).getTime() - job.startedAt.getTime());
    if (job.status === 'running') v.remainingMs = est.remainingMs === null ? null : Math.round(est.remainingMs);
    if (job.startedAt) v.startedAt = job.startedAt.toISOString();
    if (job.finishedAt) v.finishedAt = job.finishedAt.toISOString();
    if (job.error !== undefined) v.error = job.error;
    if (job.status === 'done') {
      v.files = Object.fromEntries(RESULT_FILES.map((f) => [f, resultUrl(job.id, f)])) as Record<ResultFile, string>;
      v.viewer = `/api/jobs/${job.id}/files/${VIEWER_FILE}`;
      v.zip = `/api/jobs/${job.id}/facelift-${job.id.slice(0, 8)}.zip`;
    }
    return v;
  }
}

/**
 * A message without file-system paths: "/srv/jobs/Xy…/upload.png is not an image" → "upload.png is not an image".
 * Messages reach every visitor of the job's page; where the server keeps files is none of their business.
 */
export function withoutPaths(message: string): string {
  return message.replace(/(?<=^|[\s'"`(])(?:[A-Za-z]:)?(?:[\\/][^\s\\/'"`:;,()]+){2,}/g, (p) => p.split(/[\\/]/).pop() ?? p);
}

function messageOf(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.trim() || 'unknown error';
}
