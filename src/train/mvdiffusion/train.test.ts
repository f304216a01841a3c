/**
 * `facelift train mvdiffusion` end to end on the golden tiny pipeline (64² views) and synthetic heads: exact resume
 * after SIGKILL, training from an SD-2.1-unCLIP-layout base, validation pictures, the pipeckpts/ export loaded by
 * `facelift infer`, and plain errors for bad input.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { SafetensorsFile } from '../../io/safetensors.ts';
import { runTorchPython } from '../../io/testing/torch-python.ts';
import { makeTinyWeights } from '../../pipeline/testing/tiny-weights.ts';
import { applyOverrides, readYamlTree } from '../config-tree.ts';
import { BIN, synthHeads } from '../gslrm/testing/fixtures.ts';
import { parseMvTrainConfig } from './config.ts';
import { makeTinyBase, OFFICIAL_CONFIG, TINY_PIPECKPTS, tinySets, type TinyRun } from './testing/tiny.ts';
import { initialUnet } from './unet-init.ts';

const run = promisify(execFile);
let root = '';
let data = '';

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'train-mv-'));
  data = await synthHeads(join(root, 'heads'), 5, 64, { layout: 'mvdiffusion', valFraction: 0.4 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const args = (r: TinyRun, more: string[] = []) => [
  BIN,
  'train',
  'mvdiffusion',
  '--config',
  OFFICIAL_CONFIG,
  '--json',
  '--threads',
  '2',
  ...tinySets(r).flatMap((s) => ['--set', s]),
  ...more,
];
const rowsOf = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, number>);

function runUntilKill(argv: string[], when: (row: Record<string, number>) => boolean) {
  return new Promise<{ rows: Record<string, number>[]; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const rows: Record<string, number>[] = [];
    let out = '',
      err = '',
      sent = false;
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const l of lines) if (l.startsWith('{')) rows.push(JSON.parse(l) as Record<string, number>);
      if (!sent && rows.some(when)) {
        sent = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (_code, sig) => resolve({ rows, signal: sig, stderr: err }));
  });
}

async function tensorsOf(file: string): Promise<Map<string, Float32Array>> {
  const f = await SafetensorsFile.open(file);
  try {
    const m = new Map<string, Float32Array>();
    for (const k of f.keys()) m.set(k, await f.readF32(k));
    return m;
  } finally {
    await f.close();
  }
}

test('train mvdiffusion: SIGKILLed and resumed (8-bit Adam, EMA, optimizer on a worker), the run logs the same losses and exports the same weights as an uninterrupted one', async () => {
  const common = {
    data,
    steps: 5,
    checkpointEvery: 2,
    accum: 2,
    extra: ['use_8bit_adam=true', 'checkpoints_total_limit=2'],
  };
  const full = await run(process.execPath, args({ ...common, out: join(root, 'full') }), { maxBuffer: 16 << 20 });
  const want = rowsOf(full.stdout);
  assert.deepEqual(
    want.map((r) => r.update),
    [1, 2, 3, 4, 5],
    'one row per update',
  );

  const killedArgs = args({ ...common, out: join(root, 'killed') });
  const killed = await runUntilKill(killedArgs, (row) => row.update >= 3);
  assert.equal(killed.signal, 'SIGKILL', `the trainer was killed mid-run: ${killed.stderr}`);
  assert.deepEqual(
    readdirSync(join(root, 'killed')).filter((n) => n.startsWith('checkpoint')),
    ['checkpoint-2'],
  );
  const resumed = await run(process.execPath, [...killedArgs, '--resume'], { maxBuffer: 16 << 20 });
  assert.match(resumed.stderr, /resuming from .*checkpoint-2 \(update 2, pass 4\)/);
  const got = rowsOf(resumed.stdout);
  assert.deepEqual(
    got.map((r) => r.update),
    [3, 4, 5],
  );
  for (const [i, r] of got.entries()) {
    const w = want[i + 2]!;
    assert.equal(r.loss, w.loss, `update ${r.update}: loss`);
    assert.equal(r.grad_norm, w.grad_norm, `update ${r.update}: grad norm`);
  }
  assert.equal(
    readFileSync(join(root, 'killed/log.jsonl'), 'utf8'),
    readFileSync(join(root, 'full/log.jsonl'), 'utf8'),
  );
  const a = await tensorsOf(join(root, 'full/pipeckpts/unet/diffusion_pytorch_model.safetensors'));
  const b = await tensorsOf(join(root, 'killed/pipeckpts/unet/diffusion_pytorch_model.safetensors'));
  for (const [k, v] of a) assert.deepEqual(b.get(k), v, `exported ${k}`);
  // checkpoints_total_limit 2: the oldest is gone; the newest holds both UNets and torch-readable optimizer state.
  assert.deepEqual(
    readdirSync(join(root, 'full'))
      .filter((n) => n.startsWith('checkpoint'))
      .sort(),
    ['checkpoint-4', 'checkpoint-5'],
  );
  const ck = join(root, 'full/checkpoint-5');
  for (const f of [
    'unet/config.json',
    'unet/diffusion_pytorch_model.safetensors',
    'unet_ema/config.json',
    'unet_ema/diffusion_pytorch_model.safetensors',
    'optimizer.bin',
    'scheduler.bin',
  ])
    assert.ok(existsSync(join(ck, f)), f);
  const ema = JSON.parse(readFileSync(join(ck, 'unet_ema/config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(ema.optimization_step, 5);
  assert.equal(ema.decay, 0.9999);
  const py = runTorchPython(
    'import sys, torch\n' +
      'o = torch.load(sys.argv[1]); s = torch.load(sys.argv[2])\n' +
      'st = o["state"]; k = max(st, key=lambda i: st[i]["state1"].numel() if "state1" in st[i] else 0)\n' +
      'print(len(st), int(st[0]["step"]), st[k]["state1"].dtype, s["last_epoch"], o["param_groups"][0]["weight_decay"])',
    [join(ck, 'optimizer.bin'), join(ck, 'scheduler.bin')],
  );
  assert.match(py.trim(), /^\d+ 5 torch\.uint8 5 0\.01$/);
});

test('train mvdiffusion from an SD-2.1-unCLIP base: conv_in widened 4 → 8 with zeros, validation pictures and metrics, and the exported pipeckpts/ runs in facelift infer', async () => {
  const base = await makeTinyBase(join(root, 'sd-base'));
  const tree = readYamlTree(OFFICIAL_CONFIG);
  applyOverrides(tree, tinySets({ data, out: join(root, 'unused'), steps: 1, pretrained: base }));
  const { config } = parseMvTrainConfig(tree, 'test');
  const init = await initialUnet(config, join(base, 'unet'), () => {});
  assert.equal(init.from, 'base');
  const baseW = (await tensorsOf(join(base, 'unet/diffusion_pytorch_model.safetensors'))).get('conv_in.weight')!;
  const w = init.params.get('conv_in.weight')!;
  const [co] = init.shapes.get('conv_in.weight') as [number];
  for (let o = 0; o < co; o++) {
    assert.deepEqual(
      w.subarray(o * 72, o * 72 + 36),
      baseW.subarray(o * 36, o * 36 + 36),
      `conv_in[${o}, 0:4] from the base`,
    );
    assert.ok(
      w.subarray(o * 72 + 36, o * 72 + 72).every((x) => x === 0),
      `conv_in[${o}, 4:8] zero`,
    );
  }

  const out = join(root, 'from-base');
  const r = await run(process.execPath, args({ data, out, steps: 2, batch: 2, pretrained: base, validation: true }), {
    maxBuffer: 16 << 20,
  });
  assert.match(r.stderr, /conv_in widened from 4 to 8 input channels \(zero for the condition latent\)/);
  assert.match(r.stderr, /validation at update 1, guidance 3: PSNR \d+\.\d+ dB, SSIM [\d.]+, LPIPS n\/a/);
  const val = join(out, 'val/global_step_0001');
  const metrics = readFileSync(join(val, 'validation-metrics.txt'), 'utf8');
  assert.match(metrics, /guidance_scale: 1\.0\n psnr: [\d.]+\nlpips: n\/a\nssim: [\d.]+\nguidance_scale: 3\.0/);
  for (const f of ['input.png', 'gt.png', 'pred_gs_1.0.png', 'grid_gs_3.0.png', 'metrics_gs_3.0.txt'])
    assert.ok(existsSync(join(val, '0000', f)), f);
  assert.ok(existsSync(join(out, 'curves.png')));

  // The export is in the official layout: FaceLift's UNet class and config, the reference's key list and shapes.
  const exported = join(out, 'pipeckpts');
  const index = JSON.parse(readFileSync(join(exported, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(index.unet, ['mvdiffusion.models.unet_mv2d_condition', 'UNetMV2DConditionModel']);
  const unetCfg = JSON.parse(readFileSync(join(exported, 'unet/config.json'), 'utf8')) as Record<string, unknown>;
  const official = JSON.parse(readFileSync(join(TINY_PIPECKPTS, 'unet/config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  for (const k of [
    '_class_name',
    'in_channels',
    'num_views',
    'sparse_mv_attention',
    'multiview_attention',
    'down_block_types',
    'up_block_types',
    'mid_block_type',
    'block_out_channels',
    'sample_size',
  ])
    assert.deepEqual(unetCfg[k], official[k], k);
  const shapes = async (f: string) => {
    const s = await SafetensorsFile.open(f);
    try {
      return s
        .keys()
        .map((k) => `${k} ${s.info(k).shape.join('x')}`)
        .sort();
    } finally {
      await s.close();
    }
  };
  assert.deepEqual(
    await shapes(join(exported, 'unet/diffusion_pytorch_model.safetensors')),
    await shapes(join(TINY_PIPECKPTS, 'unet/diffusion_pytorch_model.safetensors')),
  );

  const weights = makeTinyWeights(join(root, 'weights'));
  rmSync(join(weights, 'mvdiffusion/pipeckpts'));
  symlinkSync(exported, join(weights, 'mvdiffusion/pipeckpts'), 'dir');
  const input = join(root, 'portrait');
  mkdirSync(input, { recursive: true });
  const { default: sharp } = await import('sharp');
  await sharp(join(data, 'sample_000000/cam_000.png'))
    .flatten({ background: '#ffffff' })
    .png()
    .toFile(join(input, 'head.png'));
  const inf = await run(
    process.execPath,
    [
      BIN,
      'infer',
      '-i',
      input,
      '-o',
      join(root, 'inferred'),
      '--weights',
      weights,
      '--no-auto-crop',
      '--matting',
      'none',
      '--steps',
      '2',
      '--json',
    ],
    { maxBuffer: 16 << 20 },
  );
  const line = JSON.parse(inf.stdout.trim().split('\n').pop()!) as { ok: boolean };
  assert.equal(line.ok, true, inf.stderr);
  for (const f of ['gaussians.ply', 'multiview.png', 'turntable.mp4'])
    assert.ok(existsSync(join(root, 'inferred/head', f)), f);
});

test('train mvdiffusion: a broken sample is reported and skipped; bad sources get one plain line', async () => {
  const broken = join(root, 'broken-data');
  mkdirSync(join(broken, 'sample_bad'), { recursive: true });
  writeFileSync(join(broken, 'sample_bad/cam_000.png'), 'not a png');
  const list = readFileSync(join(data, 'data_mvdiff_train.txt'), 'utf8').trim();
  writeFileSync(join(broken, 'data_mvdiff_train.txt'), `${join(broken, 'sample_bad')}\n${list}\n`);
  const r = await run(process.execPath, args({ data: broken, out: join(root, 'skip'), steps: 2, batch: 2 }), {
    maxBuffer: 16 << 20,
  });
  assert.match(r.stderr, /skipping sample .*sample_bad: .*cam_001\.png/);
  assert.equal(rowsOf(r.stdout).length, 2);

  const fail = async (argv: string[]) => {
    try {
      await run(process.execPath, argv, { maxBuffer: 16 << 20 });
    } catch (e) {
      return (e as { stderr: string }).stderr;
    }
    assert.fail('expected the command to fail');
  };
  const missing = await fail(
    args({ data, out: join(root, 'x1'), steps: 1, extra: ['resume_from_checkpoint=checkpoint-99'] }),
  );
  assert.match(missing, /resume_from_checkpoint checkpoint-99: there is no .*checkpoint-99/);
  assert.equal(missing.split('\n').filter((l) => l.startsWith('facelift:')).length, 1, missing);
  const notPipeline = await fail(args({ data, out: join(root, 'x2'), steps: 1, pretrained: data }));
  assert.match(notPipeline, /is not a diffusers pipeline folder \(no model_index\.json\)/);
  const resumeNone = await fail([...args({ data, out: join(root, 'x3'), steps: 1 }), '--resume']);
  assert.match(resumeNone, /--resume: no checkpoint-<n> in/);
});
