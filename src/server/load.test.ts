/** A bounded load test: 50 concurrent clients polling job status (and config) while a job runs. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startServer } from './app.ts';
import { ChildRunner } from './child-runner.ts';
import { SYNTH_RUNNER_MODULE, SYNTH_STAGES } from './testing/synth-runner.ts';
import { form, submit, testPhoto } from './testing/client.ts';

test('50 concurrent clients polling status are all answered, without errors, in bounded time', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'facelift-load-'));
  // The job runs in a model worker process, as under `facelift serve`, while the clients poll.
  const runner = new ChildRunner({ module: SYNTH_RUNNER_MODULE, options: { frames: 24 }, stages: SYNTH_STAGES });
  await runner.ready();
  const srv = await startServer({ runner, root: tmp, port: 0, webDist: join(tmp, 'none'), log: () => {} });
  try {
    const { status, json: job } = await submit(srv.url, form(await testPhoto(), { autoCrop: 'false' }));
    assert.equal(status, 202);
    const CLIENTS = 50, POLLS = 20;
    const t0 = performance.now();
    const latencies: number[] = [];
    const statuses = new Map<number, number>();
    const seen = new Set<string>();
    await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; i < POLLS; i++) {
        const t = performance.now();
        const res = await fetch(`${srv.url}${i % 5 === 4 ? '/api/config' : `/api/jobs/${job.id}`}`);
        const body = (await res.json()) as { status?: string };
        latencies.push(performance.now() - t);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (body.status) seen.add(body.status);
        if (c % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    }));
    const wall = performance.now() - t0;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    console.log(`load: ${CLIENTS * POLLS} requests in ${wall.toFixed(0)} ms, p50 ${latencies[latencies.length >> 1]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, states seen ${[...seen]}`);
    assert.deepEqual([...statuses], [[200, CLIENTS * POLLS]]);
    assert.ok(wall < 30_000, `took ${wall} ms`);
    assert.ok(p99 < 5_000, `p99 ${p99} ms`);
  } finally {
    await srv.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
