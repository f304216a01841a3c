/**
 * `npm run bench -- queue [--jobs 12] [--reps 2]`
 *
 * The Redis queue on the tiny official-layout pipeline (64², 2 DDIM steps, 4 turntable frames, one onnxruntime
 * thread per job): portraits per minute through `facelift infer --redis`'s path (file exchange + BullMQ) with 1 and
 * with 2 `facelift worker` processes (started and loaded before the clock starts), against the same folder run in
 * this process with the models loaded once (runFolder, one thread) — so the difference per job is the queue's
 * overhead: Redis round trips, the photo download, the result upload and the commit. A real redis-server on
 * 127.0.0.1 (append-only file on, fsync always).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFolder } from '../src/pipeline/batch.ts';
import { loadModels } from '../src/pipeline/models.ts';
import { makeTinyWeights } from '../src/pipeline/testing/tiny-weights.ts';
import { runRemoteBatch } from '../src/queue/batch.ts';
import { TestRedis, redisMissing } from '../src/queue/testing/redis-server.ts';
import { portraits, spawnWorker, stopWorkers } from '../src/queue/testing/workers.ts';
import { numberArg } from './args.ts';
import type { BenchRun, Figure } from './figure.ts';

const SETTINGS = { autoCrop: false, guidanceScale: 3, steps: 2, seed: 5 };
const FRAMES = 4;

export const run: BenchRun = async function* (args): AsyncGenerator<Figure> {
  if (redisMissing) throw new Error(redisMissing);
  const jobs = numberArg(args, 'jobs', 12), reps = numberArg(args, 'reps', 2);
  const root = mkdtempSync(join(tmpdir(), 'bench-queue-'));
  const env = { ...process.env, FACELIFT_CACHE: join(root, 'cache'), HF_HUB_OFFLINE: '1' };
  process.env.FACELIFT_CACHE = env.FACELIFT_CACHE;
  const redis = await TestRedis.start(join(root, 'redis'));
  try {
    const weights = makeTinyWeights(join(root, 'weights'));
    const input = join(root, 'in');
    await portraits(input, jobs);

    // In this process, models loaded once: what a single machine does.
    const models = await loadModels({ weights, matting: 'none', threads: 1 });
    const local: number[] = [];
    try {
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        await runFolder(input, { models, outputDir: join(root, `local-${r}`), ...SETTINGS, turntableFrames: FRAMES });
        local.push((performance.now() - t) / 1000);
      }
    } finally {
      await models.close();
    }

    const remote = new Map<number, number[]>();
    for (const n of [1, 2]) {
      const ws = Array.from({ length: n }, (_, k) =>
        spawnWorker(redis.url, { weights, name: `w${k}`, env, workDir: join(root, `work-${n}-${k}`) }));
      try {
        await Promise.all(ws.map((w) => w.ready));
        for (let r = 0; r < reps; r++) {
          const t = performance.now();
          const out = await runRemoteBatch({
            redisUrl: redis.url, inputDir: input, outputDir: join(root, `remote-${n}-${r}`), settings: SETTINGS, frames: FRAMES,
          });
          if (out.some((o) => !o.ok)) throw new Error(`queue run failed: ${JSON.stringify(out.filter((o) => !o.ok))}`);
          remote.set(n, [...(remote.get(n) ?? []), (performance.now() - t) / 1000]);
        }
      } finally {
        await stopWorkers(ws);
      }
    }

    const best = (xs: number[]) => Math.min(...xs);
    const spread = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
    const perMin = (s: number) => (60 * jobs) / s;
    const one = remote.get(1)!, two = remote.get(2)!;
    yield {
      name: 'queue: 1 worker', value: perMin(best(one)), unit: 'jobs/min', baseline: perMin(best(local)),
      baselineName: 'same folder in-process (models loaded once)',
      note: `${jobs} tiny portraits; best of ${reps} (s: ${spread(one)}; in-process ${spread(local)})`,
    };
    yield {
      name: 'queue: 2 workers', value: perMin(best(two)), unit: 'jobs/min', baseline: perMin(best(one)),
      baselineName: '1 worker', note: `2 cores, 1 onnxruntime thread per worker; s: ${spread(two)}`,
    };
    yield {
      name: 'queue: overhead per job (1 worker)', value: (1000 * (best(one) - best(local))) / jobs, unit: 'ms',
      note: 'Redis round trips, photo download, result upload and commit over loopback HTTP, worker child IPC',
    };
  } finally {
    await redis.stop();
    rmSync(root, { recursive: true, force: true });
  }
};
