/**
 * A JobRunner whose jobs run on other machines: each job becomes a record in a BullMQ queue on Redis; any
 * `facelift worker` takes it, fetches the photo from this process's file exchange, streams progress back through
 * Redis, and sends the result files to the exchange. The job is done when a complete result has been committed
 * there (the first one wins); it fails when BullMQ gives up on it (a bad photo fails at once; a worker that died
 * lets another worker retry, a bounded number of times).
 */
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { extname } from 'node:path';
import type { PlannedStage } from '../pipeline/estimate.ts';
import type { JobRunner, RunHooks, RunRequest, StageEvent } from '../server/runner.ts';
import type { JobSettings } from '../server/settings.ts';
import { UserError } from '../util/errors.ts';
import type { FileExchange } from './exchange.ts';
import { QUEUE_NAME, encodeJob, type Postprocess, type RemoteJobData } from './protocol.ts';
import { connect, waitReady } from './redis.ts';

export interface RemoteRunnerOptions {
  redisUrl: string;
  exchange: FileExchange;
  /** Where workers reach the exchange (known once the HTTP server listens). */
  exchangeUrl: () => string;
  post: Postprocess;
  stages: readonly string[];
  plan?: (settings: JobSettings) => PlannedStage[];
  /** Tries per job when workers fail or die (default 3). */
  attempts?: number;
  /** How often job states and queue positions are read, ms (default 1000). */
  pollMs?: number;
}

interface Pending {
  onProgress: (e: StageEvent) => void;
  hooks: RunHooks | undefined;
  fail: (e: Error) => void;
}

const FORMAT: Record<string, RemoteJobData['format']> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' };

/** BullMQ's words for a job whose workers kept dying, in ours. */
function failureMessage(reason: string | undefined): string {
  if (!reason) return 'the job failed on the worker without a reason';
  if (/stalled more than allowable limit/i.test(reason)) {
    return 'the workers running this job kept stopping (killed or crashed) before finishing it; it was given up';
  }
  return reason;
}

export function isStageEvent(x: unknown): x is StageEvent {
  const e = x as StageEvent;
  return typeof e === 'object' && e !== null && typeof e.stage === 'string' && Number.isFinite(e.step) && Number.isFinite(e.total);
}

export class RemoteRunner implements JobRunner {
  readonly remote = true;
  readonly stages: readonly string[];
  readonly plan?: (settings: JobSettings) => PlannedStage[];
  private readonly pending = new Map<string, Pending>();
  private conn: { queue: Queue; events: QueueEvents; redis: Redis; eventsRedis: Redis } | undefined;
  private connecting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(private readonly opts: RemoteRunnerOptions) {
    this.stages = opts.stages;
    if (opts.plan) this.plan = opts.plan;
  }

  ready(): Promise<void> {
    this.connecting ??= (async () => {
      const redis = connect(this.opts.redisUrl);
      const eventsRedis = connect(this.opts.redisUrl, { blocking: true });
      try {
        await waitReady(redis, this.opts.redisUrl);
      } catch (e) {
        redis.disconnect();
        eventsRedis.disconnect();
        this.connecting = undefined;
        throw e;
      }
      const queue = new Queue(QUEUE_NAME, { connection: redis });
      const events = new QueueEvents(QUEUE_NAME, { connection: eventsRedis });
      events.on('progress', ({ jobId, data }) => {
        if (isStageEvent(data)) this.pending.get(jobId)?.onProgress(data);
      });
      events.on('error', () => {}); // reconnects by itself
      queue.on('error', () => {});
      this.conn = { queue, events, redis, eventsRedis };
      this.timer = setInterval(() => void this.poll(), this.opts.pollMs ?? 1000);
    })();
    return this.connecting;
  }

  /** Queue positions of the waiting jobs and the fate of the others, read from Redis. */
  private async poll(): Promise<void> {
    if (!this.conn || this.polling || this.pending.size === 0) return;
    this.polling = true;
    try {
      const { queue } = this.conn;
      const waiting = (await queue.getWaiting(0, -1)).map((j) => j?.id);
      // BullMQ lists the newest first: the job to run next is last.
      waiting.reverse();
      for (const [id, p] of this.pending) {
        const ahead = waiting.indexOf(id);
        if (ahead >= 0) p.hooks?.onPosition?.(ahead);
        const job = await queue.getJob(id);
        if (!job) continue;
        const state = await job.getState();
        if (state === 'failed') p.fail(new UserError(failureMessage(job.failedReason)));
      }
    } catch {
      // Redis is away (restarting): try again on the next tick.
    } finally {
      this.polling = false;
    }
  }

  async run(req: RunRequest, onProgress: (e: StageEvent) => void, hooks?: RunHooks): Promise<void> {
    await this.ready();
    const id = req.id;
    if (!id) throw new Error('a remote job needs the job id');
    const format = FORMAT[extname(req.input).toLowerCase()];
    if (!format) throw new UserError(`${extname(req.input)} photos cannot be sent to workers`);
    const { token, committed } = this.opts.exchange.register(id, req.input, req.outDir);
    let fail!: (e: Error) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    this.pending.set(id, { onProgress, hooks, fail });
    try {
      const data = encodeJob({ id, token, exchange: this.opts.exchangeUrl(), settings: req.settings, post: this.opts.post, format });
      const attempts = this.opts.attempts ?? 3;
      await this.conn!.queue.add('portrait', data, {
        jobId: id, attempts, backoff: { type: 'fixed', delay: 500 },
        removeOnComplete: { age: 24 * 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600 },
      });
      await Promise.race([committed, failed]);
    } finally {
      this.pending.delete(id);
      this.opts.exchange.unregister(id);
    }
  }

  /** Withdraws the jobs still waiting for a worker and fails every unfinished run. */
  async close(): Promise<void> {
    await this.connecting?.catch(() => {});
    clearInterval(this.timer);
    const c = this.conn;
    this.conn = undefined;
    for (const [id, p] of this.pending) {
      // A job already on a worker is left to fail there: its exchange is gone.
      await c?.queue.getJob(id).then((j) => j?.remove()).catch(() => {});
      p.fail(new UserError('the server shut down before this job finished'));
    }
    if (!c) return;
    await c.events.close().catch(() => {});
    await c.queue.close().catch(() => {});
    c.redis.disconnect();
    c.eventsRedis.disconnect();
  }
}
