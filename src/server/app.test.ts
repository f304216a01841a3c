/** The HTTP API over real HTTP on 127.0.0.1, with a runner that writes real result files (SynthRunner). */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { unzipSync } from 'fflate';
import sharp from 'sharp';
import { startServer, type RunningServer } from './app.ts';
import { RESULT_FILES } from './runner.ts';
import { decodePly } from '../splat/ply.ts';
import { SynthRunner } from './testing/synth-runner.ts';
import { parseSettings } from './settings.ts';
import { collectEvents, form, rawGet, submit, testPhoto } from './testing/client.ts';
import type { JobView } from './jobs.ts';

/** Loose JSON for assertions. */
type Json = Record<string, any>;

const tmp = mkdtempSync(join(tmpdir(), 'facelift-server-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function webDist(): string {
  const dir = join(tmp, 'dist');
  mkdirSync(join(dir, 'assets'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>facelift</title>');
  writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(tmp, 'secret.txt'), 'SECRET');
  return dir;
}

test('absent steps are the chosen sampler\'s: 20 for the default and the multistep ones, 50 for FaceLift\'s DDIM', () => {
  const steps = (f: Record<string, string>) => parseSettings(new Map(Object.entries(f))).steps;
  assert.deepEqual([steps({}), steps({ scheduler: 'unipc' }), steps({ scheduler: 'ddim' })], [20, 20, 50]);
  assert.equal(steps({ scheduler: 'ddim', steps: '30' }), 30);
  assert.equal(parseSettings(new Map()).scheduler, undefined);
  assert.throws(() => steps({ scheduler: 'euler' }), /scheduler must be one of/);
});

describe('API: a job from upload to results', () => {
  let srv: RunningServer;
  const runner = new SynthRunner({ failOn: 13 });
  before(async () => {
    const examples = join(tmp, 'examples');
    mkdirSync(examples, { recursive: true });
    writeFileSync(join(examples, '001.png'), await testPhoto());
    writeFileSync(join(examples, 'notes.txt'), 'not an example');
    srv = await startServer({ runner, root: join(tmp, 'jobs-a'), port: 0, webDist: webDist(), examplesDir: examples, log: () => {} });
  });
  after(() => srv.close());

  test('config lists the reference controls, limits and examples', async () => {
    const c = (await (await fetch(`${srv.url}/api/config`)).json()) as Json;
    assert.deepEqual(c.controls.guidanceScale, { label: 'Guidance Scale', min: 1, max: 10, step: 0.1, default: 3 });
    // The reference's 50 DDIM steps become the default sampler's 20 (DPM-Solver++ 2M).
    assert.deepEqual(c.controls.steps, { label: 'Generation Steps', min: 10, max: 100, step: 5, default: 20 });
    assert.equal(c.controls.seed.default, 4);
    assert.equal(c.controls.autoCrop.default, true);
    assert.equal(c.queue.capacity, 10);
    assert.deepEqual(c.examples, [{ name: '001.png', url: '/api/examples/001.png' }]);
    const ex = await fetch(`${srv.url}${c.examples[0].url}`);
    assert.equal(ex.headers.get('content-type'), 'image/png');
    assert.equal((await rawGet(srv.url, '/api/examples/notes.txt')).status, 404);
  });

  test('submit → progress events → every result file and the zip', async () => {
    const photo = await testPhoto('jpeg');
    const { status, json: job } = await submit(srv.url, form(photo, { autoCrop: 'false', guidanceScale: '4.5', steps: '25', seed: '7' }, 'me.jpg'));
    assert.equal(status, 202, JSON.stringify(job));
    assert.match(job.id, /^[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(job.settings, { autoCrop: false, guidanceScale: 4.5, steps: 25, seed: 7 });

    const events = await collectEvents(srv.url, job.id);
    const last = events.at(-1)!;
    assert.equal(last.status, 'done', JSON.stringify(last));
    assert.equal(last.progress, 1);
    // Per-stage progress: each stage was seen running part-way before the end, in order.
    const seenRunning = new Set(events.flatMap((e) => e.stages.filter((s) => s.state === 'running').map((s) => s.name)));
    for (const s of ['render', 'turntable']) assert.ok(seenRunning.has(s), `no running event for ${s}`);
    const progress = events.map((e) => e.progress);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');
    assert.ok(last.stages.every((s) => s.state === 'done'));

    const fetched: Record<string, Uint8Array> = {};
    for (const f of RESULT_FILES) {
      const res = await fetch(`${srv.url}${last.files![f]}`);
      assert.equal(res.status, 200, f);
      fetched[f] = new Uint8Array(await res.arrayBuffer());
    }
    const png = await sharp(fetched['input.png']!).metadata();
    assert.equal(png.format, 'png');
    assert.equal((await sharp(fetched['multiview.png']!).metadata()).width, 6 * 64);
    assert.equal(Buffer.from(fetched['turntable.mp4']!.subarray(4, 8)).toString('latin1'), 'ftyp');
    assert.ok(Buffer.from(fetched['gaussians.ply']!.subarray(0, 200)).toString('latin1').startsWith('ply\nformat binary_little_endian'));

    // The video seeks: a byte range answers 206 with just those bytes.
    const part = await fetch(`${srv.url}${last.files!['turntable.mp4']}`, { headers: { Range: 'bytes=4-7' } });
    assert.equal(part.status, 206);
    assert.equal(Buffer.from(await part.arrayBuffer()).toString('latin1'), 'ftyp');
    const dl = await fetch(`${srv.url}${last.files!['gaussians.ply']}?download`);
    assert.match(dl.headers.get('content-disposition') ?? '', /attachment; filename="facelift-.*-gaussians\.ply"/);
    await dl.arrayBuffer();

    // The viewer's copy: the same Gaussians in the standard 3DGS layout (no red/green/blue bytes, which Spark
    // would take for a point cloud).
    const viewerPly = Buffer.from(await (await fetch(`${srv.url}${last.viewer}`)).arrayBuffer());
    const header = viewerPly.subarray(0, viewerPly.indexOf('end_header')).toString('latin1');
    assert.ok(!/property uchar red/.test(header) && /property float nx/.test(header), header);
    const original = decodePly(Buffer.from(fetched['gaussians.ply']!)), forViewer = decodePly(viewerPly);
    assert.equal(forViewer.count, original.count);
    for (const k of ['means', 'scales', 'rotations', 'opacities', 'sh'] as const) assert.deepEqual(forViewer[k], original[k], k);

    const zipRes = await fetch(`${srv.url}${last.zip}`);
    assert.equal(zipRes.headers.get('content-type'), 'application/zip');
    const entries = unzipSync(new Uint8Array(await zipRes.arrayBuffer()));
    assert.deepEqual(Object.keys(entries).sort(), [...RESULT_FILES].sort());
    for (const f of RESULT_FILES) assert.ok(Buffer.from(entries[f]!).equals(Buffer.from(fetched[f]!)), `zip entry ${f} differs`);

    const status2 = (await (await fetch(`${srv.url}/api/jobs/${job.id}`)).json()) as Json;
    assert.equal(status2.status, 'done');
  });

  test('a failing job reports a plain error, and the server keeps serving', async () => {
    const { json: bad } = await submit(srv.url, form(await testPhoto(), { seed: '13', autoCrop: 'false' }));
    const events = await collectEvents(srv.url, bad.id);
    const last = events.at(-1)!;
    assert.equal(last.status, 'failed');
    assert.match(last.error!, /failed during preprocess: synthetic failure for seed 13/);
    assert.equal((await rawGet(srv.url, `/api/jobs/${bad.id}/files/input.png`)).status, 409);

    const { status, json: good } = await submit(srv.url, form(await testPhoto(), { seed: '3', autoCrop: 'false' }));
    assert.equal(status, 202);
    assert.equal((await collectEvents(srv.url, good.id)).at(-1)!.status, 'done');
  });

  test('bad uploads are refused with a reason', async () => {
    const cases: Array<[string, FormData | string, number, RegExp]> = [
      ['text named .png', form(Buffer.from('hello, I am not a picture'), {}, 'x.png'), 415, /not an image/],
      ['GIF', form(Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'), {}, 'x.png'), 415, /GIF images are not accepted/],
      ['PNG header then garbage', form(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)])), 400, /could not be read/],
      ['empty file', form(new Uint8Array(0)), 400, /empty/],
      ['no file', form(undefined, { seed: '1' }), 400, /no photo/],
      ['wrong field name', form(await testPhoto(), {}, 'p.png', 'photo'), 400, /field "image"/],
      ['steps out of range', form(await testPhoto(), { steps: '5' }), 400, /Generation Steps \(steps\) must be between 10 and 100/],
      ['guidance not a number', form(await testPhoto(), { guidanceScale: 'lots' }), 400, /must be a number/],
      ['fractional seed', form(await testPhoto(), { seed: '4.5' }), 400, /whole number/],
      ['unknown field', form(await testPhoto(), { strength: '1' }), 400, /unknown field "strength"/],
      ['unknown sampler', form(await testPhoto(), { scheduler: 'euler' }), 400, /scheduler must be one of ddim, dpmpp2m, unipc/],
      ['not multipart', JSON.stringify({ image: 'x' }), 415, /multipart\/form-data/],
    ];
    for (const [name, body, code, message] of cases) {
      const res = await fetch(`${srv.url}/api/jobs`, { method: 'POST', body, ...(typeof body === 'string' ? { headers: { 'Content-Type': 'application/json' } } : {}) });
      const json = (await res.json()) as { error: string };
      assert.equal(res.status, code, `${name}: ${json.error}`);
      assert.match(json.error, message, name);
    }
    assert.equal((await fetch(`${srv.url}/api/jobs`)).status, 405);
  });

  test('unknown or malformed job ids are 404', async () => {
    for (const path of ['/api/jobs/AAAAAAAAAAAAAAAAAAAAAA', '/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/events', '/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/files/input.png',
      '/api/jobs/1', '/api/jobs/..', '/api/nothing']) {
      const r = await rawGet(srv.url, path);
      assert.equal(r.status, 404, path);
      assert.ok(JSON.parse(r.body).error, path);
    }
  });

  test('path traversal never reaches files outside the job or the UI folder', async () => {
    const { json: job } = await submit(srv.url, form(await testPhoto(), { autoCrop: 'false' }));
    assert.equal((await collectEvents(srv.url, job.id)).at(-1)!.status, 'done');
    const id = job.id;
    const attempts = [
      `/api/jobs/${id}/files/../../../package.json`,
      `/api/jobs/${id}/files/..%2f..%2f..%2fpackage.json`,
      `/api/jobs/${id}/files/%2e%2e%2fupload.png`,
      `/api/jobs/${id}/files/upload.png`, // in the job's folder, but not a result file
      `/api/jobs/${id}/files/input.png%00.txt`,
      `/api/jobs/${id}/files/input.png/..`,
      `/api/jobs/${id}/../../../secret.txt`,
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e%5c%2e%2e%5csecret.txt',
      '/..%00/secret.txt',
      '//etc/passwd',
    ];
    for (const path of attempts) {
      const r = await rawGet(srv.url, path);
      assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
      assert.ok(!r.body.includes('SECRET') && !r.body.includes('"name": "facelift-ts"') && !r.body.includes('root:'), path);
    }
    assert.equal((await rawGet(srv.url, `/api/jobs/${id}/files/input.png`)).status, 200);
    assert.equal((await rawGet(srv.url, '/assets/app.js')).status, 200);
    const home = await fetch(`${srv.url}/`);
    assert.match(await home.text(), /<title>facelift/);
    assert.match(home.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(home.headers.get('x-content-type-options'), 'nosniff');
  });
});

describe('API: honest progress', () => {
  test('the bar weights stages by expected time, the step count is the one asked for, the time left counts down', async () => {
    const runner = new SynthRunner({ stepDelayMs: 60, frames: 6 });
    const srv = await startServer({ runner, root: join(tmp, 'jobs-p'), port: 0, webDist: webDist(), log: () => {} });
    try {
      const run = async () => {
        const { json: job } = await submit(srv.url, form(await testPhoto('png'), { autoCrop: 'false', steps: '15', seed: '3' }, 'p.png'));
        const events = await collectEvents(srv.url, job.id);
        assert.equal(events.at(-1)!.status, 'done');
        return events;
      };
      const first = await run();
      const synth = (e: JobView) => e.stages.find((s) => s.name === 'synthesize')!;
      const started = first.filter((e) => synth(e).state !== 'pending');
      assert.ok(started.length > 10 && started.every((e) => synth(e).total === 15 && synth(e).step <= 15), 'the stage counts the 15 steps asked for');
      const running = first.filter((e) => e.status === 'running');
      assert.ok(running.every((e, i) => i === 0 || e.elapsedMs! >= running[i - 1]!.elapsedMs!), 'elapsed time grows');
      // The synthesize steps are ~70 % of this runner's expected time; equal shares would give it 1/5.
      const afterSynth = running.find((e) => synth(e).state === 'done')!;
      assert.ok(afterSynth.progress > 0.6, `progress after the long stage ${afterSynth.progress}`);
      // Before anything is measured there is no estimate; from the first steps on there is, and it counts down.
      assert.equal(running[0]!.remainingMs, null);
      const counting = running.filter((e) => synth(e).state === 'running' && synth(e).step >= 2).map((e) => e.remainingMs);
      assert.ok(counting.length >= 8 && counting.every((r) => typeof r === 'number'), JSON.stringify(counting));
      const falls = counting.filter((r, i) => i > 0 && r! < counting[i - 1]!).length;
      assert.ok(falls >= 0.8 * (counting.length - 1), `time left ${JSON.stringify(counting)} ms`);
      // The next job starts from the costs the first one measured: an estimate from its first event, near the
      // first job's real duration.
      const took = first.at(-1)!.elapsedMs!;
      const second = (await run()).filter((e) => e.status === 'running');
      const guess = second[0]!.remainingMs;
      assert.ok(typeof guess === 'number' && guess > 0.5 * took && guess < 2 * took, `first job took ${took} ms; guess ${guess}`);
    } finally {
      await srv.close();
    }
  });
});

describe('API: limits', () => {
  test('an oversize photo is refused with 413, with or without Content-Length', async () => {
    const runner = new SynthRunner();
    const srv = await startServer({ runner, root: join(tmp, 'jobs-b'), port: 0, maxUploadBytes: 20_000, webDist: webDist(), log: () => {} });
    try {
      const big = Buffer.concat([await testPhoto('png', 400, 400), Buffer.alloc(60_000, 1)]);
      const r1 = await submit(srv.url, form(big));
      assert.equal(r1.status, 413);
      assert.match(r1.json.error!, /limit of 0\.02 MB|limit is 0\.02 MB/);

      // Chunked (no Content-Length): the limit is found while parsing; the answer still arrives.
      const boundary = 'xBOUNDARYx';
      const u = new URL(srv.url);
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, path: '/api/jobs', method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`);
        for (let i = 0; i < 10; i++) req.write(big.subarray(i * 7000, (i + 1) * 7000));
        req.end(`\r\n--${boundary}--\r\n`);
      });
      assert.equal(answer.status, 413);
      assert.match(JSON.parse(answer.body).error, /larger than the limit/);
      assert.equal(runner.runs, 0);
      // …and a normal upload still works afterwards.
      assert.equal((await submit(srv.url, form(await testPhoto(), { autoCrop: 'false' }))).status, 202);
    } finally {
      await srv.close();
    }
  });

  test('a full queue answers 503 with a clear message; queued jobs know their position', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const runner = new SynthRunner({ gate: () => gate });
    const srv = await startServer({ runner, root: join(tmp, 'jobs-c'), port: 0, queueSize: 2, webDist: webDist(), log: () => {} });
    try {
      const photo = await testPhoto();
      const running = await submit(srv.url, form(photo, { autoCrop: 'false' }));
      await new Promise((r) => setTimeout(r, 50));
      const q1 = await submit(srv.url, form(photo, { autoCrop: 'false', seed: '1' }));
      const q2 = await submit(srv.url, form(photo, { autoCrop: 'false', seed: '2' }));
      assert.deepEqual([running.status, q1.status, q2.status], [202, 202, 202]);
      assert.equal(((await (await fetch(`${srv.url}/api/jobs/${running.json.id}`)).json()) as Json).status, 'running');
      assert.deepEqual([q1.json.position, q2.json.position], [0, 1]);
      const full = await fetch(`${srv.url}/api/jobs`, { method: 'POST', body: form(photo) });
      assert.equal(full.status, 503);
      assert.equal(full.headers.get('retry-after'), '60');
      assert.match(((await full.json()) as { error: string }).error, /queue is full \(2 jobs are waiting\); please try again/);
      const cfg = (await (await fetch(`${srv.url}/api/config`)).json()) as Json;
      assert.equal(cfg.queue.waiting, 2);

      const watch = collectEvents(srv.url, q2.json.id);
      release();
      const events = await watch;
      assert.deepEqual(events.map((e) => e.position).filter((p) => p !== null), [1, 0], 'the queued job saw its position move up');
      assert.equal(events.at(-1)!.status, 'done');
      for (const j of [running, q1]) assert.equal(((await (await fetch(`${srv.url}/api/jobs/${j.json.id}`)).json()) as Json).status, 'done');
    } finally {
      await srv.close();
    }
  });

  test('when the models cannot load, the UI still serves and submissions get 503 with the reason', async () => {
    const runner = new SynthRunner({ loadError: new Error('no weights in /nowhere (run facelift weights download)') });
    const srv = await startServer({ runner, root: join(tmp, 'jobs-d'), port: 0, webDist: webDist(), log: () => {} });
    try {
      await new Promise((r) => setTimeout(r, 20));
      const cfg = (await (await fetch(`${srv.url}/api/config`)).json()) as Json;
      assert.deepEqual(cfg.models, { state: 'failed', error: 'no weights in /nowhere (run facelift weights download)' });
      const r = await submit(srv.url, form(await testPhoto()));
      assert.equal(r.status, 503);
      assert.match(r.json.error!, /models could not be loaded \(no weights in \/nowhere/);
      assert.equal((await rawGet(srv.url, '/')).status, 200);
    } finally {
      await srv.close();
    }
  });

  test('without a built UI, / says how to build it', async () => {
    const srv = await startServer({ runner: new SynthRunner(), root: join(tmp, 'jobs-e'), port: 0, webDist: join(tmp, 'no-dist'), log: () => {} });
    try {
      const r = await rawGet(srv.url, '/');
      assert.equal(r.status, 503);
      assert.match(r.body, /npm run build:web/);
      assert.ok(!existsSync(join(tmp, 'no-dist')));
    } finally {
      await srv.close();
    }
  });
});
