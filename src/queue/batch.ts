/**
 * `facelift infer --redis URL -i DIR -o DIR`: a folder of portraits through the worker queue. This process serves
 * the photos and takes the results on its own file exchange (no shared file system needed), keeps a bounded number
 * of jobs in the queue, and writes the usual OUT/<name>/ folders as jobs finish — each one renamed into place
 * complete, so a rerun skips the images whose folder exists.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkInputFolder, type BatchItem } from '../pipeline/batch.ts';
import { newJobId } from '../server/jobs.ts';
import type { StageEvent } from '../server/runner.ts';
import type { JobSettings } from '../server/settings.ts';
import { startExchange } from './exchange.ts';
import { RemoteRunner } from './remote-runner.ts';

export interface RemoteBatchOptions {
  redisUrl: string;
  inputDir: string;
  outputDir: string;
  settings: JobSettings;
  frames: number;
  /** Where the exchange listens (default 127.0.0.1, any free port) and the URL workers use to reach it. */
  listen?: { host?: string; port?: number };
  advertise?: string;
  /** Jobs in the queue at once (default 50). */
  maxInFlight?: number;
  attempts?: number;
  onProgress?: (p: BatchProgress) => void;
  onOutcome?: (o: RemoteOutcome) => void;
}

export interface BatchProgress {
  total: number;
  done: number;
  failed: number;
  skipped: number;
  /** Latest stage event of each image a worker is on. */
  running: ReadonlyMap<string, StageEvent>;
}

export type RemoteOutcome =
  | { ok: true; file: string; name: string; outDir: string; skipped: boolean; result?: unknown }
  | { ok: false; file: string; name: string; error: string };

/** A finished result folder (folders appear only complete, by rename). */
const finished = (dir: string) => existsSync(join(dir, 'gaussians.ply'));

export async function runRemoteBatch(o: RemoteBatchOptions): Promise<RemoteOutcome[]> {
  const items = checkInputFolder(o.inputDir);
  const ex = await startExchange({ ...o.listen, ...(o.advertise ? { advertise: o.advertise } : {}) });
  const runner = new RemoteRunner({
    redisUrl: o.redisUrl, exchange: ex.exchange, exchangeUrl: () => ex.url, stages: [],
    post: { profile: 'infer', frames: o.frames }, ...(o.attempts ? { attempts: o.attempts } : {}),
  });
  const progress = { total: items.length, done: 0, failed: 0, skipped: 0, running: new Map<string, StageEvent>() };
  const outcomes: RemoteOutcome[] = [];
  const report = (r: RemoteOutcome) => {
    outcomes.push(r);
    o.onOutcome?.(r);
    o.onProgress?.(progress);
  };
  try {
    await runner.ready();
    const toRun: BatchItem[] = [];
    for (const item of items) {
      const outDir = join(o.outputDir, item.name);
      if (finished(outDir)) {
        progress.skipped++;
        report({ ok: true, file: item.file, name: item.name, outDir, skipped: true });
      } else toRun.push(item);
    }
    const one = async (item: BatchItem) => {
      const outDir = join(o.outputDir, item.name);
      try {
        await runner.run({ id: newJobId(), input: item.file, outDir, settings: o.settings }, (e) => {
          progress.running.set(item.name, e);
          o.onProgress?.(progress);
        });
        progress.done++;
        const resultFile = join(outDir, 'result.json');
        const result: unknown = existsSync(resultFile) ? JSON.parse(readFileSync(resultFile, 'utf8')) : undefined;
        progress.running.delete(item.name);
        report({ ok: true, file: item.file, name: item.name, outDir, skipped: false, ...(result ? { result } : {}) });
      } catch (e) {
        progress.failed++;
        progress.running.delete(item.name);
        // The worker names the photo by its own working copy; the user knows it by its file name.
        const error = ((e as Error).message ?? String(e)).replace(/\bphoto\.(png|jpg|webp)\b/g, basename(item.file));
        report({ ok: false, file: item.file, name: item.name, error });
      }
    };
    const limit = Math.max(1, o.maxInFlight ?? 50);
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(limit, toRun.length) }, async () => {
      while (next < toRun.length) await one(toRun[next++]!);
    }));
  } finally {
    await runner.close();
    await ex.close();
  }
  return outcomes;
}
