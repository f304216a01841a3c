/** The model worker process: jobs run in a child, progress crosses IPC, a crashed child fails one job only. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startServer } from './app.ts';
import { ChildRunner } from './child-runner.ts';
import { SYNTH_RUNNER_MODULE, SYNTH_STAGES } from './testing/synth-runner.ts';
import { collectEvents, form, submit, testPhoto } from './testing/client.ts';

const tmp = mkdtempSync(join(tmpdir(), 'facelift-child-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('jobs run in the worker process; a crash fails that job in plain words and the next job gets a fresh worker', { timeout: 120_000 }, async () => {
  const loads: string[] = [];
  const runner = new ChildRunner({ module: SYNTH_RUNNER_MODULE, options: { failOn: 13, crashOn: 66 }, stages: SYNTH_STAGES, onLoadProgress: (e) => loads.push(e.stage) });
  const srv = await startServer({ runner, root: join(tmp, 'jobs'), port: 0, webDist: join(tmp, 'none'), log: () => {} });
  try {
    const photo = await testPhoto();
    const run = async (seed: number) => {
      const { status, json } = await submit(srv.url, form(photo, { autoCrop: 'false', seed: String(seed) }));
      assert.equal(status, 202);
      return collectEvents(srv.url, json.id);
    };
    const first = await run(1);
    assert.equal(first.at(-1)!.status, 'done', first.at(-1)!.error);
    assert.ok(first.some((e) => e.stages.some((s) => s.name === 'render' && s.state === 'running')), 'progress crossed the process boundary');
    const pidBefore = (runner as unknown as { child: { pid: number } }).child.pid;
    // The worker already wrote the viewer's PLY, next to the results.
    assert.ok(existsSync(join(tmp, 'jobs', first.at(-1)!.id, 'result', 'viewer.ply')));

    const failed = (await run(13)).at(-1)!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /synthetic failure for seed 13/);

    const crashed = (await run(66)).at(-1)!;
    assert.equal(crashed.status, 'failed');
    assert.match(crashed.error!, /the model worker process stopped during the job: it exited with code 70; it is restarted for the next job/);

    const again = (await run(2)).at(-1)!;
    assert.equal(again.status, 'done', again.error);
    const pidAfter = (runner as unknown as { child: { pid: number } }).child.pid;
    assert.notEqual(pidAfter, pidBefore);
  } finally {
    await srv.close();
  }
});

test('a worker whose runner cannot load reports why; the server refuses jobs with that reason', { timeout: 60_000 }, async () => {
  const runner = new ChildRunner({ module: join(tmp, 'no-such-runner.ts'), options: {}, stages: SYNTH_STAGES });
  const srv = await startServer({ runner, root: join(tmp, 'jobs2'), port: 0, webDist: join(tmp, 'none'), log: () => {} });
  try {
    await assert.rejects(runner.ready(), /no-such-runner/);
    const cfg = (await (await fetch(`${srv.url}/api/config`)).json()) as { models: { state: string; error: string } };
    assert.equal(cfg.models.state, 'failed');
    const r = await submit(srv.url, form(await testPhoto()));
    assert.equal(r.status, 503);
  } finally {
    await srv.close();
  }
});

test('while the worker loads its models, /api/config shows the load progress', { timeout: 60_000 }, async () => {
  const runner = new ChildRunner({ module: SYNTH_RUNNER_MODULE, options: { loadDelayMs: 1500 }, stages: SYNTH_STAGES });
  const srv = await startServer({ runner, root: join(tmp, 'jobs3'), port: 0, webDist: join(tmp, 'none'), log: () => {} });
  try {
    type Models = { state: string; progress?: { stage: string; step: number; total: number; detail?: string } };
    const seen: Models[] = [];
    for (;;) {
      const m = ((await (await fetch(`${srv.url}/api/config`)).json()) as { models: Models }).models;
      seen.push(m);
      if (m.state !== 'loading') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(seen.at(-1)!.state, 'ready');
    assert.ok(seen.some((m) => m.state === 'loading' && m.progress?.stage === 'load' && m.progress.detail === 'waiting'), JSON.stringify(seen.slice(0, 3)));
    assert.equal(seen.at(-1)!.progress, undefined);
  } finally {
    await srv.close();
  }
});
