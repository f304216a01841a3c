/**
 * End to end: the real pipeline (preprocess → multi-view diffusion → GS-LRM → filters → PLY / renders / MP4) on
 * tiny random models saved in the official layouts (testing/tiny-weights.ts), through the `facelift infer` CLI
 * and through the API.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { cudaAvailable } from '../core/index.ts';
import { readImage } from '../io/image.ts';
import { probeVideo } from '../io/video.ts';
import { decodePly } from '../splat/ply.ts';
import { IMAGE_STAGES, type ProgressEvent } from './events.ts';
import { loadModels, type FaceliftModels } from './models.ts';
import { OUTPUT_FILES, runInference, type InferenceResult } from './run.ts';
import { TINY_CLR_EMBEDS, makeTinyWeights } from './testing/tiny-weights.ts';

const root = mkdtempSync(join(tmpdir(), 'fl-infer-'));
const weights = makeTinyWeights(join(root, 'weights'));
const cache = join(root, 'cache');
const S = 64;
const bin = new URL('../../bin/facelift.js', import.meta.url).pathname;

/** A smooth "head": a shaded ellipse with two eyes on a coloured background (w×h, RGB). */
function blob(w: number, h: number, seed: number): Buffer {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = (x - w / 2) / (0.3 * w), v = (y - h / 2) / (0.4 * h);
      const inside = u * u + v * v < 1;
      const eye = Math.hypot(Math.abs(u) - 0.4, v + 0.2) < 0.12;
      const c = eye ? [30, 30, 40] : inside ? [200 - 40 * v, 160 - 30 * v, 130] : [40 + seed * 50, 90, 160 - seed * 30];
      px.set(c.map((a) => Math.max(0, Math.min(255, Math.round(a)))), (y * w + x) * 3);
    }
  }
  return px;
}

async function writeInputs(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await sharp(blob(96, 80, 0), { raw: { width: 96, height: 80, channels: 3 } }).png().toFile(join(dir, 'a_face.png'));
  await sharp(blob(70, 70, 1), { raw: { width: 70, height: 70, channels: 3 } }).grayscale().jpeg().toFile(join(dir, 'b_gray.JPG'));
  // A cut-out: transparent outside the ellipse, so the file's own alpha replaces matting.
  const rgba = Buffer.alloc(64 * 64 * 4);
  const rgb = blob(64, 64, 2);
  for (let i = 0; i < 64 * 64; i++) {
    const x = i % 64, y = Math.floor(i / 64);
    const inside = ((x - 32) / 20) ** 2 + ((y - 32) / 26) ** 2 < 1;
    rgba.set([rgb[3 * i]!, rgb[3 * i + 1]!, rgb[3 * i + 2]!, inside ? 255 : 0], 4 * i);
  }
  await sharp(rgba, { raw: { width: 64, height: 64, channels: 4 } }).png().toFile(join(dir, 'c_cutout.png'));
  writeFileSync(join(dir, 'd_broken.jpeg'), 'this is not a JPEG');
  writeFileSync(join(dir, 'notes.txt'), 'ignored');
}

function facelift(args: string[], cacheDir = cache): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8', env: { ...process.env, FACELIFT_CACHE: cacheDir, HF_HUB_OFFLINE: '1', HF_HUB_CACHE: join(root, 'hf') }, timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Independent PLY header check: 62 properties in FaceLift's order, vertex count, exact file size. */
function checkPly(path: string, count: number): void {
  const buf = readFileSync(path);
  const end = buf.indexOf('end_header\n') + 'end_header\n'.length;
  const lines = buf.subarray(0, end).toString('ascii').trim().split('\n');
  assert.deepEqual(lines.slice(0, 3), ['ply', 'format binary_little_endian 1.0', `element vertex ${count}`]);
  const props = lines.slice(3, -1).map((l) => l.split(' '));
  assert.equal(props.length, 62);
  const names = props.map((p) => p[2]);
  assert.deepEqual(names.slice(0, 9), ['x', 'y', 'z', 'red', 'green', 'blue', 'f_dc_0', 'f_dc_1', 'f_dc_2']);
  assert.deepEqual(names.slice(9, 54), Array.from({ length: 45 }, (_, i) => `f_rest_${i}`));
  assert.deepEqual(names.slice(54), ['opacity', 'scale_0', 'scale_1', 'scale_2', 'rot_0', 'rot_1', 'rot_2', 'rot_3']);
  assert.deepEqual(props.filter((p) => p[1] === 'uchar').map((p) => p[2]), ['red', 'green', 'blue']);
  assert.equal(buf.length, end + count * (59 * 4 + 3));
  assert.equal(decodePly(buf, path).count, count);
}

async function checkResultFolder(dir: string, expect: { seed: number; steps: number; guidanceScale: number; autoCrop: boolean; frames: number; matting: string }): Promise<InferenceResult> {
  assert.deepEqual(readdirSync(dir).sort(), [...OUTPUT_FILES].sort());
  const input = await readImage(join(dir, 'input.png'));
  assert.deepEqual([input.width, input.height, input.channels], [512, 512, 3]);
  for (const f of ['multiview.png', 'output.png']) {
    const im = await readImage(join(dir, f));
    assert.deepEqual([im.width, im.height, im.channels], [6 * S, S, 3], f);
  }
  const r = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as InferenceResult;
  assert.equal(r.seed, expect.seed);
  assert.deepEqual(
    [r.settings.seed, r.settings.steps, r.settings.guidanceScale, r.settings.autoCrop, r.settings.turntableFrames, r.settings.fps, r.settings.eta],
    [expect.seed, expect.steps, expect.guidanceScale, expect.autoCrop, expect.frames, 30, 1],
  );
  assert.equal(r.settings.filter.opacityThreshold, 0.04);
  for (const s of IMAGE_STAGES) assert.ok(typeof r.timings[s] === 'number' && r.timings[s] >= 0, `timing ${s}`);
  assert.ok(r.timings.total >= r.timings.diffusion);
  // CPU time per stage, all threads: positive, and no more than every core for the stage's whole wall time.
  for (const s of IMAGE_STAGES) {
    const cpu = r.cpuSeconds[s];
    assert.ok(cpu !== undefined && cpu >= 0 && cpu <= (availableParallelism() * r.timings[s]) / 1000 + 0.05, `cpu ${s}: ${cpu}`);
  }
  assert.ok(r.cpuSeconds.diffusion! > 0);
  assert.equal(r.gaussians.raw, 2 + 6 * S * S);
  assert.ok(r.gaussians.filtered > 0 && r.gaussians.filtered < r.gaussians.raw);
  const removed = r.gaussians.removed;
  assert.equal(removed.opacity + removed.scale + removed.floater + removed.box + r.gaussians.filtered, r.gaussians.raw);
  assert.equal(r.imageSize, S);
  assert.equal(r.model, 'official', 'weights in the official layout, not the shipped demo models');
  assert.equal(r.preprocess.matting, expect.matting);
  assert.match(r.weights.gslrmCheckpoint, /gslrm\/ckpt_0000000000000042\.pt$/);
  assert.match(r.weights.gslrmConfig, /gslrm\/config\.yaml$/);
  assert.match(r.versions['facelift-ts']!, /^\d+\.\d+\.\d+/);
  assert.ok(r.versions['onnxruntime-node'] && r.versions.node && r.versions.ffmpeg);
  checkPly(join(dir, 'gaussians.ply'), r.gaussians.filtered);
  const v = await probeVideo(join(dir, 'turntable.mp4'));
  assert.deepEqual([v.codec, v.pixFmt, v.width, v.height, v.frames, v.fps], ['h264', 'yuv420p', S, S, expect.frames, 30]);
  return r;
}

test('facelift infer CLI: three generated portraits processed, a broken file reported and skipped, exit code 1, every output checked', async () => {
  const input = join(root, 'in');
  const out = join(root, 'out');
  await writeInputs(input);
  const r = facelift(['infer', '-i', input, '-o', out, '--weights', weights, '--no-auto-crop', '--matting', 'none', '--steps', '2', '--json'], join(root, 'cli-cache'));
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean; file: string; name: string; error?: string });
  assert.deepEqual(lines.map((l) => [l.name, l.ok]), [['a_face', true], ['b_gray', true], ['c_cutout', true], ['d_broken', false]]);
  assert.match(lines[3]!.error!, /d_broken\.jpeg is not an image this tool can read/);
  // Only completed results, no partial folders left behind.
  assert.deepEqual(readdirSync(out).sort(), ['a_face', 'b_gray', 'c_cutout']);
  const settings = { seed: 4, steps: 2, guidanceScale: 3, autoCrop: false, frames: 150 };
  const a = await checkResultFolder(join(out, 'a_face'), { ...settings, matting: 'none' });
  assert.equal(a.settings.scheduler, 'dpmpp2m', 'DPM-Solver++ (2M) is the default sampler');
  // No clr_embeds.pt in the hub layout: computed from text_encoder/ and cached.
  assert.match(a.weights.promptEmbeds, /computed from pipeckpts\/text_encoder/);
  assert.equal(readdirSync(join(root, 'cli-cache/prompt-embeds')).filter((f) => f.endsWith('.safetensors')).length, 1);
  assert.deepEqual([a.preprocess.source.width, a.preprocess.source.height], [96, 80]);
  await checkResultFolder(join(out, 'b_gray'), { ...settings, matting: 'none' });
  await checkResultFolder(join(out, 'c_cutout'), { ...settings, matting: 'input-alpha' });
});

test('facelift infer --scheduler unipc --int8: the multistep sampler and int8 layers run, and result.json says so', async () => {
  const input = join(root, 'in-fast');
  const out = join(root, 'out-fast');
  await writeInputs(input);
  rmSync(join(input, 'd_broken.jpeg'), { force: true });
  const r = facelift(['infer', '-i', input, '-o', out, '--weights', weights, '--no-auto-crop', '--matting', 'none',
    '--steps', '3', '--scheduler', 'unipc', '--int8', '--json'], join(root, 'cli-cache'));
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(out, 'a_face/result.json'), 'utf8')) as {
    int8: boolean; settings: { scheduler: string; steps: number };
  };
  assert.deepEqual([res.int8, res.settings.scheduler, res.settings.steps], [true, 'unipc', 3]);
  const bad = facelift(['infer', '-i', input, '-o', out, '--weights', weights, '--scheduler', 'euler'], join(root, 'cli-cache'));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--scheduler.*euler.*(ddim|choices)/s);
});

test("facelift infer accepts the reference's flag spelling; auto-crop without a detectable face takes the RGB fallback", async () => {
  const input = join(root, 'in2');
  mkdirSync(input);
  await sharp(blob(80, 80, 1), { raw: { width: 80, height: 80, channels: 3 } }).png().toFile(join(input, 'x.png'));
  const out = join(root, 'out2');
  // A weights folder that also holds FaceLift's clr_embeds.pt where the reference keeps it: that file is used.
  const w2 = makeTinyWeights(join(root, 'weights2'));
  const clr = join(w2, 'mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt');
  mkdirSync(join(clr, '..'), { recursive: true });
  copyFileSync(TINY_CLR_EMBEDS, clr);
  const r = facelift(['infer', '--input_dir', input, '--output_dir', out, '--weights', w2, '--auto_crop', '--matting', 'none',
    '--guidance_scale_2D', '2.5', '--step_2D', '1', '--seed', '9', '--frames', '8']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /1 of 1 image\(s\) done/);
  // The progress lines carry the time left for the image, known once a stage has been measured.
  assert.match(r.stderr, /diffusion done in [\d.]+ s; image ~\d+ s left/);
  const res = await checkResultFolder(join(out, 'x'), { seed: 9, steps: 1, guidanceScale: 2.5, autoCrop: true, frames: 8, matting: 'none' });
  assert.equal(res.weights.promptEmbeds, clr);
  assert.equal(res.preprocess.usedFallback, true);
  assert.match(res.preprocess.fallbackReason!, /no face/);
  const bad = facelift(['infer', '-i', input, '--input_dir', join(root, 'other'), '--weights', weights]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--input-dir and --input_dir are the same option/);
  const empty = join(root, 'empty');
  mkdirSync(empty);
  const none = facelift(['infer', '-i', empty, '-o', join(root, 'out3'), '--weights', weights, '--matting', 'none']);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no \.png\/\.jpg\/\.jpeg images in/);
  // A mistyped or empty folder is said first, in plain words, even with no weights anywhere (no model loading, no
  // download attempt).
  const typo = facelift(['infer', '-i', join(root, 'typo'), '--weights', join(root, 'no-weights-here')]);
  assert.equal(typo.status, 1);
  assert.match(typo.stderr, /cannot read the input folder .*typo: it does not exist/);
  assert.doesNotMatch(typo.stderr, /ENOENT|weights/);
  const emptyNoWeights = facelift(['infer', '-i', empty, '--weights', join(root, 'no-weights-here')]);
  assert.match(emptyNoWeights.stderr, /no \.png\/\.jpg\/\.jpeg images in/);
  // --device cuda where onnxruntime-node has no CUDA provider: one line that says how to get it, before any loading.
  if (!cudaAvailable()) {
    const out = join(root, 'out-cuda');
    const cuda = facelift(['infer', '-i', input, '-o', out, '--weights', weights, '--device', 'cuda']);
    assert.equal(cuda.status, 1);
    assert.equal(cuda.stderr.trim().split('\n').length, 1, cuda.stderr);
    assert.match(cuda.stderr, /--device cuda: onnxruntime-node's CUDA provider is not installed here.*cuda12/);
    assert.equal(existsSync(out), false);
  }
});

let models: FaceliftModels;
before(async () => {
  // releaseSessions: the diffusion sessions are rebuilt for every image, as at the official size on small machines.
  models = await loadModels({ weights, matting: 'none', cacheDir: cache, threads: 2, renderThreads: 2, releaseSessions: true });
});
after(async () => {
  await models?.close();
  rmSync(root, { recursive: true, force: true });
});

async function pixels(path: string): Promise<Uint8Array> {
  return (await readImage(path)).data;
}

test('runInference: progress events per stage in order; the seed alone fixes the views (same seed → same views, also after the sessions were rebuilt; other seed → other views)', async () => {
  const input = join(root, 'api-in');
  await writeInputs(input);
  const events: ProgressEvent[] = [];
  const run = (name: string, seed: number, log?: ProgressEvent[]) =>
    runInference(join(input, 'a_face.png'), { models, outDir: join(root, 'api-out', name), autoCrop: false, steps: 2, seed, turntableFrames: 4 }, log ? (e) => log.push(e) : undefined);
  const r1 = await run('one', 4, events);
  // Each stage starts at 0 and ends exactly once at step === total, in pipeline order.
  const ends = events.filter((e) => e.step === e.total);
  assert.deepEqual(ends.map((e) => e.stage), [...IMAGE_STAGES]);
  for (const s of IMAGE_STAGES) {
    const ev = events.filter((e) => e.stage === s);
    assert.equal(ev[0]!.step, 0, s);
    assert.ok(ev.every((e, i) => i === 0 || e.step >= ev[i - 1]!.step), `${s} steps increase`);
  }
  assert.equal(events.filter((e) => e.stage === 'diffusion').at(-1)!.total, 2, 'the diffusion stage counts the steps asked for');
  assert.equal(events.filter((e) => e.stage === 'turntable').at(-1)!.total, 4);
  assert.ok(events.every((e) => e.image === join(input, 'a_face.png')));

  // Another image in between must not change this image's result (noise is reseeded per image). The three calls
  // are issued at once: runInference queues them on the shared models.
  const both: ProgressEvent[] = [];
  const [, r2, r3] = await Promise.all([
    runInference(join(input, 'b_gray.JPG'), { models, outDir: join(root, 'api-out', 'other'), autoCrop: false, steps: 2, seed: 4, turntableFrames: 4 }, (e) => both.push(e)),
    run('two', 4, both), run('three', 5),
  ]);
  // Queued, not interleaved: all of b_gray's events, then all of a_face's.
  const switches = both.filter((e, i) => i > 0 && e.image !== both[i - 1]!.image).length;
  assert.equal(switches, 1);
  const mv = (r: InferenceResult) => pixels(r.files['multiview.png']);
  assert.deepEqual(await mv(r1), await mv(r2));
  assert.notDeepEqual(await mv(r1), await mv(r3));
  assert.equal(r1.gaussians.filtered, r2.gaussians.filtered);
});

test('runInference: cancelling through the signal stops the run and writes nothing', async () => {
  const ac = new AbortController();
  const outDir = join(root, 'api-abort', 'a');
  await assert.rejects(runInference(join(root, 'api-in', 'a_face.png'), { models, outDir, autoCrop: false, steps: 3, turntableFrames: 4, signal: ac.signal },
    (e) => { if (e.stage === 'diffusion' && e.step === 1) ac.abort(); }), { name: 'AbortError' });
  assert.deepEqual(readdirSync(join(root, 'api-abort')), []);
});

test('runInference: a failing stage leaves no result folder and no partial files; an earlier result survives a failed re-run', async () => {
  const input = join(root, 'api-in');
  const outDir = join(root, 'api-atomic', 'a');
  const saved = process.env.FFMPEG_PATH;
  const fake = join(root, 'fake-ffmpeg.sh');
  writeFileSync(fake, '#!/bin/sh\necho "simulated encoder failure" >&2\nexit 3\n', { mode: 0o755 });
  const runA = () => runInference(join(input, 'a_face.png'), { models, outDir, autoCrop: false, steps: 1, turntableFrames: 4 });
  try {
    process.env.FFMPEG_PATH = fake;
    await assert.rejects(runA(), /simulated encoder failure|ffmpeg/);
    assert.deepEqual(readdirSync(join(root, 'api-atomic')), []);
    process.env.FFMPEG_PATH = saved ?? '';
    if (saved === undefined) delete process.env.FFMPEG_PATH;
    const ok = await runA();
    const before = statSync(ok.files['result.json']).mtimeMs;
    process.env.FFMPEG_PATH = fake;
    await assert.rejects(runA());
    assert.deepEqual(readdirSync(join(root, 'api-atomic')), ['a']);
    assert.equal(statSync(join(outDir, 'result.json')).mtimeMs, before);
    assert.ok(existsSync(join(outDir, 'turntable.mp4')));
  } finally {
    if (saved === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = saved;
  }
});
