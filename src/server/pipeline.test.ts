/**
 * The server on the real pipeline with the tiny official-layout test weights (src/pipeline/testing): upload over
 * HTTP, stage events from runInference crossing from the model worker process, every result file, and a job that
 * fails inside the pipeline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { unzipSync } from 'fflate';
import { IMAGE_STAGES } from '../pipeline/events.ts';
import { makeTinyWeights } from '../pipeline/testing/tiny-weights.ts';
import { decodePly } from '../splat/ply.ts';
import { startServer, type RunningServer } from './app.ts';
import { ChildRunner } from './child-runner.ts';
import { PIPELINE_RUNNER_MODULE, type PipelineRunnerOptions } from './pipeline-runner.ts';
import { RESULT_FILES } from './runner.ts';
import { collectEvents, form, submit, testPhoto } from './testing/client.ts';

const root = mkdtempSync(join(tmpdir(), 'facelift-serve-pipe-'));
let srv: RunningServer;
before(async () => {
  const weights = makeTinyWeights(join(root, 'weights'));
  // As `facelift serve` runs it: the pipeline in a model worker process.
  const options: PipelineRunnerOptions = { weights, matting: 'none', cacheDir: join(root, 'cache'), threads: 2, renderThreads: 2, turntableFrames: 6 };
  const runner = new ChildRunner({ module: PIPELINE_RUNNER_MODULE, options, stages: IMAGE_STAGES });
  srv = await startServer({ runner, root: join(root, 'jobs'), port: 0, webDist: join(root, 'no-ui'), log: () => {} });
});
after(async () => {
  await srv.close();
  rmSync(root, { recursive: true, force: true });
});

test('real pipeline (tiny weights): submit → per-stage SSE progress → input, 6 views, renders, MP4, PLY, zip', async () => {
  const { status, json: job } = await submit(srv.url, form(await testPhoto('jpeg'), { autoCrop: 'false', steps: '10', guidanceScale: '2', seed: '11' }, 'p.jpg'));
  assert.equal(status, 202, JSON.stringify(job));
  assert.deepEqual(job.stages.map((s) => s.name), [...IMAGE_STAGES]);
  const events = await collectEvents(srv.url, job.id, 120_000);
  const last = events.at(-1)!;
  assert.equal(last.status, 'done', last.error);
  // The diffusion stage reported its DDIM steps one by one, counting the 10 steps asked for.
  const diffusionSteps = new Set(events.map((e) => e.stages.find((s) => s.name === 'diffusion')!).filter((s) => s.state === 'running').map((s) => s.step));
  assert.ok(diffusionSteps.size >= 5, `saw diffusion steps ${[...diffusionSteps]}`);
  assert.equal(last.stages.find((s) => s.name === 'diffusion')!.total, 10);
  assert.ok(events.every((e) => e.stages.every((s) => s.step <= s.total)));
  assert.ok(last.stages.every((s) => s.state === 'done' && typeof s.ms === 'number'));

  const get = async (f: string) => Buffer.from(await (await fetch(`${srv.url}${last.files![f as (typeof RESULT_FILES)[number]]}`)).arrayBuffer());
  const input = await sharp(await get('input.png')).metadata();
  assert.deepEqual([input.width, input.height], [512, 512]);
  for (const f of ['multiview.png', 'output.png']) {
    const m = await sharp(await get(f)).metadata();
    assert.deepEqual([m.width, m.height], [6 * 64, 64], f);
  }
  assert.equal((await get('turntable.mp4')).subarray(4, 8).toString('latin1'), 'ftyp');
  const ply = decodePly(await get('gaussians.ply'));
  assert.ok(ply.count > 0);
  const zip = unzipSync(new Uint8Array(await (await fetch(`${srv.url}${last.zip}`)).arrayBuffer()));
  assert.deepEqual(Object.keys(zip).sort(), [...RESULT_FILES, 'result.json'].sort());
  const result = JSON.parse(Buffer.from(zip['result.json']!).toString('utf8')) as { settings: { seed: number; steps: number; guidanceScale: number; autoCrop: boolean; turntableFrames: number; filter: { scalingThreshold: number } } };
  assert.deepEqual([result.settings.seed, result.settings.steps, result.settings.guidanceScale, result.settings.autoCrop, result.settings.turntableFrames],
    [11, 10, 2, false, 6]);
  assert.equal(result.settings.filter.scalingThreshold, 0.2, 'the gradio app\'s filter');
});

test('real pipeline: a photo that passes the upload check but cannot be decoded fails the job in plain words; the next job runs', async () => {
  // A PNG whose header is fine but whose pixel data is cut off: sharp reads the size, decoding fails.
  const good = await testPhoto('png', 120, 150);
  const truncated = good.subarray(0, Math.floor(good.length * 0.6));
  const { status, json: bad } = await submit(srv.url, form(truncated, { autoCrop: 'false', steps: '10' }));
  assert.equal(status, 202, JSON.stringify(bad));
  const last = (await collectEvents(srv.url, bad.id, 120_000)).at(-1)!;
  assert.equal(last.status, 'failed');
  assert.match(last.error!, /^The job failed: .*(cannot decode|corrupt|truncated)/i);
  assert.doesNotMatch(last.error!, /\/(tmp|root|home|srv)\//, 'the message names no server path');
  const next = await submit(srv.url, form(await testPhoto(), { autoCrop: 'false', steps: '10' }));
  assert.equal((await collectEvents(srv.url, next.json.id, 120_000)).at(-1)!.status, 'done');
});
