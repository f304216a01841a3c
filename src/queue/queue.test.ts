/**
 * The Redis queue with real parts: Debian's redis-server (append-only file on), `facelift worker` processes on the
 * tiny official-layout weights, `facelift infer --redis` and `facelift serve`'s server with a remote runner, all on
 * 127.0.0.1. Skips only when redis-server is missing (scripts/setup-and-test.sh installs it).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTinyWeights } from '../pipeline/testing/tiny-weights.ts';
import { startServer, type RunningServer } from '../server/app.ts';
import { IMAGE_STAGES } from '../pipeline/events.ts';
import { collectEvents, form, submit, testPhoto } from '../server/testing/client.ts';
import { decodePly } from '../splat/ply.ts';
import { FileExchange } from './exchange.ts';
import { RemoteRunner } from './remote-runner.ts';
import { TestRedis, redisMissing } from './testing/redis-server.ts';
import { portraits, spawnWorker, stopWorkers, type WorkerProc } from './testing/workers.ts';

const skip = redisMissing;
const BIN = new URL('../../bin/facelift.js', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'facelift-queue-'));
let weights: string;

before(() => {
  if (!skip) weights = makeTinyWeights(join(root, 'weights'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const env = (name: string) => ({ ...process.env, FACELIFT_CACHE: join(root, `cache-${name}`), HF_HUB_OFFLINE: '1' });

/** A `facelift worker` on the tiny weights (single thread, 2-second locks so a killed worker's job moves on fast). */
const worker = (url: string, name: string, extra: string[] = []) => spawnWorker(url, {
  weights, name, env: env(name), workDir: join(root, `work-${name}`), extra: ['--lock-ms', '2000', ...extra],
});

/** `facelift infer --redis` as a user runs it; resolves with its exit code, stdout lines and stderr. */
function inferRemote(url: string, input: string, out: string, onLine?: (l: Record<string, unknown>) => void) {
  const proc = spawn(process.execPath, [BIN, 'infer', '--redis', url, '-i', input, '-o', out, '--no-auto-crop', '--steps', '2',
    '--frames', '4', '--seed', '5', '--json'], { env: env('infer'), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buf = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let cut; (cut = buf.indexOf('\n')) >= 0; buf = buf.slice(cut + 1)) {
      const l = JSON.parse(buf.slice(0, cut)) as Record<string, unknown>;
      lines.push(l);
      onLine?.(l);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  return new Promise<{ code: number | null; lines: typeof lines; stderr: string }>((resolve) => proc.once('exit', (code) => resolve({ code, lines, stderr })));
}

function checkResult(dir: string): void {
  for (const f of ['input.png', 'multiview.png', 'output.png', 'turntable.mp4', 'gaussians.ply', 'result.json']) {
    assert.ok(existsSync(join(dir, f)), `${dir}/${f}`);
  }
  assert.ok(decodePly(readFileSync(join(dir, 'gaussians.ply'))).count > 0);
  assert.deepEqual(readdirSync(join(dir, '..')).filter((n) => n.includes('.incoming-')), [], 'no attempt folders left');
}

describe('facelift worker + infer --redis', { skip }, () => {
  let redis: TestRedis;
  before(async () => {
    redis = await TestRedis.start(join(root, 'redis-a'));
  });
  after(async () => {
    await redis?.stop();
  });

  test('3 workers, 20 portraits, one worker SIGKILLed mid-job: all 20 results complete, once each; a rerun skips them', { timeout: 300_000 }, async () => {
    const input = join(root, 'in20');
    const out = join(root, 'out20');
    await portraits(input, 20);
    const ws = ['w1', 'w2', 'w3'].map((n) => worker(redis.url, n));
    try {
      await Promise.all(ws.map((w) => w.ready));
      let killedJob: string | undefined;
      const r = await inferRemote(redis.url, input, out, () => {
        if (killedJob) return;
        // After a first result, kill a worker in the middle of a job (its lock expires; another worker retries it).
        const busy = ws.find((w) => /: started/.test(w.log.at(-1) ?? ''));
        if (!busy) return;
        killedJob = /job (\S+):/.exec(busy.log.at(-1)!)![1];
        busy.proc.kill('SIGKILL');
      });
      assert.ok(killedJob, 'a worker was killed mid-job');
      const retried = ws.filter((w) => w.proc.signalCode === null).flatMap((w) => w.log).filter((l) => l.startsWith(`job ${killedJob}: `));
      assert.match(retried[0] ?? '', /: started \(attempt 1, start 2\)$/, `the killed worker's job on the others: ${retried.join(' | ')}`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.lines.length, 20);
      assert.deepEqual(r.lines.map((l) => l.name).sort(), Array.from({ length: 20 }, (_, k) => `p${String(k).padStart(2, '0')}`));
      assert.ok(r.lines.every((l) => l.ok === true && l.skipped === false), JSON.stringify(r.lines.filter((l) => !l.ok)));
      for (const name of readdirSync(out)) checkResult(join(out, name));
      assert.equal(readdirSync(out).length, 20);
      // Each result came from the settings sent with it.
      const meta = JSON.parse(readFileSync(join(out, 'p07', 'result.json'), 'utf8')) as { settings: { steps: number }; seed: number };
      assert.deepEqual([meta.settings.steps, meta.seed], [2, 5]);
      const survivors = ws.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
      assert.equal(survivors.length, 2);

      const again = await inferRemote(redis.url, input, out);
      assert.equal(again.code, 0, again.stderr);
      assert.ok(again.lines.every((l) => l.skipped === true), 'finished images are skipped');
    } finally {
      await stopWorkers(ws);
    }
  });

  test('byte for byte what a local facelift infer writes for the same photo and seed', { timeout: 180_000 }, async () => {
    const input = join(root, 'in1');
    await portraits(input, 1);
    const w = worker(redis.url, 'solo');
    try {
      await w.ready;
      const remote = await inferRemote(redis.url, input, join(root, 'out-remote'));
      assert.equal(remote.code, 0, remote.stderr);
      const local = spawnSync(process.execPath, [BIN, 'infer', '-i', input, '-o', join(root, 'out-local'), '--weights', weights,
        '--matting', 'none', '--threads', '1', '--no-auto-crop', '--steps', '2', '--frames', '4', '--seed', '5', '--json'],
      { env: env('solo'), encoding: 'utf8' });
      assert.equal(local.status, 0, local.stderr);
      for (const f of ['input.png', 'multiview.png', 'output.png', 'turntable.mp4', 'gaussians.ply']) {
        assert.ok(readFileSync(join(root, 'out-remote/p00', f)).equals(readFileSync(join(root, 'out-local/p00', f))), f);
      }
    } finally {
      await stopWorkers([w]);
    }
  });

  test('Redis restarted mid-batch (append-only file): nothing lost, workers and the batch reconnect', { timeout: 240_000 }, async () => {
    const input = join(root, 'in8');
    const out = join(root, 'out8');
    await portraits(input, 8);
    const ws = ['r1', 'r2'].map((n) => worker(redis.url, n));
    try {
      await Promise.all(ws.map((w) => w.ready));
      let restarted: Promise<void> | undefined;
      const r = await inferRemote(redis.url, input, out, () => { restarted ??= redis.restart(1500); });
      await restarted;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.lines.length, 8);
      assert.ok(r.lines.every((l) => l.ok === true));
      for (const name of readdirSync(out)) checkResult(join(out, name));
    } finally {
      await stopWorkers(ws);
    }
  });
});

describe('facelift serve --redis', { skip }, () => {
  let redis: TestRedis;
  let srv: RunningServer;
  let ws: WorkerProc[] = [];
  const password = 's3cret-pass';
  before(async () => {
    redis = await TestRedis.start(join(root, 'redis-b'), { password });
    const exchange = new FileExchange();
    let url = '';
    const runner = new RemoteRunner({
      redisUrl: redis.url, exchange, exchangeUrl: () => url, stages: IMAGE_STAGES,
      post: { profile: 'gradio', frames: 4 }, attempts: 3, pollMs: 300,
    });
    srv = await startServer({ runner, root: join(root, 'serve-jobs'), port: 0, webDist: join(root, 'no-ui'), log: () => {}, queueSize: 4, concurrency: 4, exchange });
    url = srv.url;
  });
  after(async () => {
    await stopWorkers(ws);
    await srv?.close();
    await redis?.stop();
  });

  test('the page\'s job: queue position, then live stages from the worker, then the results; bad photos fail once, in plain words', { timeout: 240_000 }, async () => {
    // No worker yet: the job waits in Redis and knows its place.
    const { status, json: job } = await submit(srv.url, form(await testPhoto('png'), { autoCrop: 'false', steps: '10', seed: '3' }, 'me.png'));
    assert.equal(status, 202, JSON.stringify(job));
    await new Promise((r) => setTimeout(r, 800));
    const queued = (await (await fetch(`${srv.url}/api/jobs/${job.id}`)).json()) as typeof job;
    assert.equal(queued.status, 'queued');
    assert.equal(queued.position, 0);

    ws = [worker(redis.url, 's1')];
    await ws[0]!.ready;
    const events = await collectEvents(srv.url, job.id, 120_000);
    const last = events.at(-1)!;
    assert.equal(last.status, 'done', last.error);
    // Live progress from the worker (stage starts and ends always reach the page; steps at most 4 times a second).
    const live = new Set(events.flatMap((e) => e.stages.filter((s) => s.state === 'running').map((s) => s.name)));
    assert.ok(live.size >= 4, `stages seen running: ${[...live]}`);
    assert.ok(events.some((e) => e.status === 'queued') && events.some((e) => e.status === 'running'));
    for (const f of ['input.png', 'multiview.png', 'output.png', 'turntable.mp4', 'gaussians.ply', 'viewer.ply'] as const) {
      const res = await fetch(`${srv.url}/api/jobs/${job.id}/files/${f}`);
      assert.equal(res.status, 200, f);
    }

    // Passes the upload check (the PNG header is fine), but the pixels are cut off: fails once, no retries, no paths.
    const good = await testPhoto('png', 120, 150);
    const fake = good.subarray(0, Math.floor(good.length * 0.6));
    const bad = await submit(srv.url, form(fake, { autoCrop: 'false', steps: '10' }, 'broken.png'));
    assert.equal(bad.status, 202, JSON.stringify(bad.json));
    const failed = (await collectEvents(srv.url, bad.json.id, 120_000)).at(-1)!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /^The job failed: .*(cannot decode|corrupt|truncated)/i);
    assert.doesNotMatch(failed.error!, /\/(tmp|work|root|home)\b|facelift-queue-|worker-/, 'no server paths in the message');
    const attempts = ws[0]!.log.filter((l) => l.startsWith(`job ${bad.json.id}: started`));
    assert.equal(attempts.length, 1, `one attempt only: ${ws[0]!.log.join('\n')}`);
  });

  test('a bounded queue: a burst of uploads gets 202 up to the limit and a clear 503 "busy" after, quickly', { timeout: 120_000 }, async () => {
    await stopWorkers(ws);
    const photo = await testPhoto('png');
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 40 }, () => submit(srv.url, form(photo, { autoCrop: 'false', steps: '10' }, 'p.png'))));
    const wall = Date.now() - t0;
    const accepted = answers.filter((a) => a.status === 202).length;
    const busy = answers.filter((a) => a.status === 503);
    assert.equal(accepted, 4);
    assert.equal(busy.length, 36);
    assert.match(busy[0]!.json.error!, /queue is full/);
    assert.ok(wall < 20_000, `40 uploads answered in ${wall} ms`);
    writeFileSync(join(root, 'burst.txt'), String(wall));
  });
});
