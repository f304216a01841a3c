import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { readCameraFile, writeCameraFile } from '../../cameras/opencv-json.ts';
import { cudaAvailable } from '../../core/index.ts';
import { runTorchPython } from '../../io/testing/torch-python.ts';
import { BIN, synthHeads, writeSmallConfig } from './testing/fixtures.ts';
import { pyDict, saveTorch, torchTensor } from '../../io/torch-save.ts';
import { TorchFile } from '../../io/torch-pt.ts';
import { gslrmParamSpec } from '../../lrm/params.ts';
import { randomGslrmWeights } from '../../lrm/weights.ts';
import { parseGslrmTrainConfig } from './config.ts';
import { readYamlTree } from '../config-tree.ts';
import { VGG_PREFIX, vggSpec } from './perceptual.ts';

const run = promisify(execFile);
let root = '';
let data = '';

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'train-gslrm-'));
  data = await synthHeads(join(root, 'heads'), 3, 32);
});
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * Runs the CLI, reading its --json rows; sends `signal` once a row satisfies `when`. Resolves at exit with the rows
 * seen, the exit code or signal, and stderr.
 */
function runUntilSignal(args: string[], when: (row: Record<string, number>) => boolean, signal: NodeJS.Signals) {
  return new Promise<{ rows: Record<string, number>[]; code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const rows: Record<string, number>[] = [];
    let out = '', err = '', sent = false;
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const l of lines) if (l.startsWith('{')) rows.push(JSON.parse(l) as Record<string, number>);
      if (!sent && rows.some(when)) { sent = true; child.kill(signal); }
    });
    child.on('exit', (code, sig) => resolve({ rows, code, signal: sig, stderr: err }));
  });
}

const lossLines = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, number>);

test('train gslrm: SIGKILLed and resumed, the run logs the same losses to the bit as an uninterrupted one (2 threads: optimizer on a worker)', async () => {
  const common = { dataset: join(data, 'data_gslrm_train.txt'), passes: 11, checkpointEvery: 4, printEvery: 1 }; // 3 samples: whole epochs → 12 passes
  const full = writeSmallConfig(join(root, 'full.yaml'), { ...common, checkpointDir: join(root, 'run-full') });
  const { stdout } = await run(
    process.execPath,
    [BIN, 'train', 'gslrm', '--config', full, '--json', '--threads', '2'],
    { maxBuffer: 16 << 20 },
  );
  const want = lossLines(stdout);
  assert.equal(want.length, 12);
  assert.ok(want[11]!.loss < want[0]!.loss, 'the loss falls over 12 passes');

  const cfg = writeSmallConfig(join(root, 'killed.yaml'), { ...common, checkpointDir: join(root, 'run-killed') });
  const args = [BIN, 'train', 'gslrm', '--config', cfg, '--json', '--threads', '2'];
  const killed = await runUntilSignal(args, (row) => row.step >= 6, 'SIGKILL');
  assert.equal(killed.signal, 'SIGKILL', 'the trainer was killed, it did not finish on its own');
  const first = killed.rows;
  assert.ok(readdirSync(join(root, 'run-killed')).includes('ckpt_0000000000000004.pt'));
  const resumed = await run(process.execPath, args, { maxBuffer: 16 << 20 });
  assert.match(resumed.stderr, /resuming from .*ckpt_0000000000000004\.pt/);
  const rest = lossLines(resumed.stdout);
  assert.deepEqual(
    rest.map((r) => r.step),
    [5, 6, 7, 8, 9, 10, 11, 12],
  );
  for (const r of [...first.filter((x) => x.step <= 6), ...rest]) {
    const w = want[r.step - 1]!;
    assert.equal(r.loss, w.loss, `pass ${r.step}: loss ${r.loss} vs uninterrupted ${w.loss}`);
    assert.equal(r.grad_norm, w.grad_norm, `pass ${r.step}: grad norm`);
    assert.equal(r.lr, w.lr);
  }
  // The log and the curves were rebuilt from the checkpoint's history: one row per pass, no duplicates.
  const log = readFileSync(join(root, 'run-killed', 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number });
  assert.deepEqual(
    log.map((r) => r.step),
    [...Array(12).keys()].map((i) => i + 1),
  );
  assert.ok(existsSync(join(root, 'run-killed', 'curves.png')));
});

test('train gslrm: checkpoints load in torch.load with the reference keys, and `facelift reconstruct` runs them', async () => {
  const dir = join(root, 'run-ckpt');
  const cfg = writeSmallConfig(join(root, 'ckpt.yaml'), {
    dataset: join(data, 'data_gslrm_train.txt'),
    checkpointDir: dir,
    passes: 3,
    checkpointEvery: 3,
  });
  await run(process.execPath, [BIN, 'train', 'gslrm', '--config', cfg, '--threads', '1']);
  const ckpt = join(dir, 'ckpt_0000000000000003.pt');
  const out = runTorchPython(
    `
import sys, json, torch
d = torch.load(sys.argv[1], map_location='cpu')
o = d['optimizer']
print(json.dumps({
  'keys': sorted(d.keys()), 'fwdbwd': d['fwdbwd_pass_step'], 'updates': d['param_update_step'],
  'model': {k: list(v.shape) for k, v in d['model'].items()},
  'groups': [(g['weight_decay'], len(g['params']), list(g['betas'])) for g in o['param_groups']],
  'state': len(o['state']), 'step': float(o['state'][0]['step']),
  'm_shape': list(o['state'][0]['exp_avg'].shape), 'sched': d['lr_scheduler']['last_epoch'],
}))`,
    [ckpt],
  );
  const r = JSON.parse(out) as {
    keys: string[];
    fwdbwd: number;
    updates: number;
    model: Record<string, number[]>;
    groups: Array<[number, number, number[]]>;
    state: number;
    step: number;
    m_shape: number[];
    sched: number;
  };
  assert.deepEqual(r.keys, ['facelift', 'fwdbwd_pass_step', 'lr_scheduler', 'model', 'optimizer', 'param_update_step']);
  assert.equal(r.fwdbwd, 3);
  assert.equal(r.updates, 3);
  assert.equal(r.sched, 3);
  assert.deepEqual(r.model['transformer_layers.0.attn.to_qkv.weight'], [96, 32]);
  assert.deepEqual(
    r.groups,
    [
      [0.05, 8, [0.9, 0.95]],
      [0, 5, [0.9, 0.95]],
    ],
    'AdamW: decay on the 8 matrices, none on the 5 LayerNorm weights',
  );
  assert.equal(r.state, 13);
  assert.equal(r.step, 3);
  assert.deepEqual(r.m_shape, r.model['gaussian_position_embeddings']);

  // The same file through `facelift reconstruct` (the run folder's config.yaml holds the model section).
  const sample = join(data, 'sample_000000');
  const views = join(root, 'views');
  mkdirSync(views, { recursive: true });
  const cams = await readCameraFile(join(sample, 'opencv_cameras.json'));
  const pick = [24, 26, 28, 22];
  pick.forEach((v, i) =>
    copyFileSync(join(sample, 'images', `cam_${String(v).padStart(3, '0')}.png`), join(views, `cam_00${i}.png`)),
  );
  await writeCameraFile(join(views, 'opencv_cameras.json'), {
    id: 'x',
    frames: pick.map((v) => ({ camera: cams.frames[v]!.camera, extra: {} })),
  });
  const outDir = join(root, 'recon');
  const rec = await run(process.execPath, [
    BIN,
    'reconstruct',
    '--views',
    views,
    '--cameras',
    join(views, 'opencv_cameras.json'),
    '-o',
    outDir,
    '--checkpoint',
    ckpt,
    '--config',
    join(dir, 'config.yaml'),
    '--threads',
    '1',
    '--frames',
    '2',
    '--json',
  ]);
  assert.ok(existsSync(join(outDir, 'gaussians.ply')) && existsSync(join(outDir, 'output.png')), rec.stderr);
});

test('train gslrm: one-line errors for bad configs, missing resume sources and unreadable data', async () => {
  const fail = async (args: string[]) => {
    try {
      await run(process.execPath, [BIN, 'train', 'gslrm', ...args]);
    } catch (e) {
      const err = e as { code: number; stderr: string };
      assert.equal(err.code, 1);
      const lines = err.stderr.trim().split('\n');
      return lines[lines.length - 1]!;
    }
    throw new Error('expected the command to fail');
  };
  const base = { dataset: join(data, 'data_gslrm_train.txt'), checkpointDir: join(root, 'run-err') };
  const cfg = writeSmallConfig(join(root, 'err.yaml'), base);
  assert.match(
    await fail(['--config', cfg, '--set', 'training.optimizer.lr=fast']),
    /training\.optimizer\.lr must be a number, got "fast"/,
  );
  assert.match(await fail(['--config', join(root, 'nope.yaml')]), /cannot read config .*nope\.yaml: no such file/);
  assert.match(
    await fail(['--config', cfg, '--set', 'training.checkpointing.resume_ckpt=' + join(root, 'no-stage')]),
    /resume_ckpt is .*no-stage, but there is no checkpoint there/,
  );
  assert.match(await fail(['--config', cfg, '--resume']), /--resume: no ckpt_\*\.pt in/);
  assert.match(
    await fail(['--config', cfg, '--set', 'training.losses.perceptual_loss_weight=0.5']),
    /perceptual loss needs VGG-19 weights \(32 of 32 .* missing in a run from random weights\)/,
  );
  assert.match(await fail(['--config', cfg, '--set', 'training.losses.lpips_loss_weight=0.1']), /needs LPIPS's weights: give torchvision's vgg16/);
  const stage1 = new URL('../../../configs/gslrm_pretrain_256.yaml', import.meta.url).pathname;
  assert.match(await fail(['--config', stage1, '--set', `training.checkpointing.checkpoint_dir=${join(root, 'run-s1')}`]),
    /dataset_path is "placeholder" .*--set training\.dataset\.dataset_path=LIST/);
  if (!cudaAvailable()) {
    assert.match(await fail(['--config', cfg, '--device', 'cuda']), /--device cuda: onnxruntime-node's CUDA provider is not installed here/);
  }
  assert.match(await fail(['--config', cfg, '--device', 'tpu']), /--device must be cpu or cuda, got tpu/);
  const notVgg = new URL('../../io/testdata/vgg-layout-tiny.mat', import.meta.url).pathname;
  assert.match(
    await fail(['--config', cfg, '--set', 'training.losses.perceptual_loss_weight=0.5', '--vgg19', notVgg]),
    /layer 0 is not conv1 of VGG-19/,
  );

  // Every listed sample unreadable: one line saying so; a partly broken list trains on what reads.
  const broken = join(root, 'broken');
  mkdirSync(join(broken, 'a'), { recursive: true });
  writeFileSync(join(broken, 'a', 'opencv_cameras.json'), '{"frames": 3}');
  writeFileSync(join(broken, 'list.txt'), `${join(broken, 'a')}\n${join(broken, 'missing')}`);
  const bad = writeSmallConfig(join(root, 'bad.yaml'), {
    ...base,
    dataset: join(broken, 'list.txt'),
    checkpointDir: join(root, 'run-bad'),
  });
  assert.match(await fail(['--config', bad]), /no readable sample in the dataset \(2 listed/);

  writeFileSync(join(broken, 'mixed.txt'), `${join(data, 'sample_000000')}\n${join(broken, 'a')}`);
  const mixed = writeSmallConfig(join(root, 'mixed.yaml'), {
    ...base,
    dataset: join(broken, 'mixed.txt'),
    checkpointDir: join(root, 'run-mixed'),
    passes: 2,
  });
  const ok = await run(process.execPath, [BIN, 'train', 'gslrm', '--config', mixed, '--threads', '1']);
  assert.match(ok.stderr, /skipping sample .*\/a: .*"frames" array/);
  assert.match(ok.stderr, /finished at pass \d+ of \d+/);

  // Unknown keys are named once as a warning, not an error.
  const extra = readFileSync(cfg, 'utf8') + 'mystery: 1\n';
  writeFileSync(
    join(root, 'extra.yaml'),
    extra
      .replace(join(root, 'run-err'), join(root, 'run-extra'))
      .replace('max_fwdbwd_passes: 10', 'max_fwdbwd_passes: 1'),
  );
  const w = await run(process.execPath, [
    BIN,
    'train',
    'gslrm',
    '--config',
    join(root, 'extra.yaml'),
    '--threads',
    '1',
  ]);
  assert.match(w.stderr, /ignoring keys this trainer does not read: mystery/);
});

test('train gslrm: the perceptual loss takes VGG-19 from the starting checkpoint, starts after l2_warmup_steps, and is saved on', async () => {
  const dir = join(root, 'run-perc');
  const cfgPath = writeSmallConfig(join(root, 'perc.yaml'), {
    dataset: join(data, 'data_gslrm_train.txt'),
    checkpointDir: dir,
    passes: 2,
  });
  writeFileSync(
    cfgPath,
    readFileSync(cfgPath, 'utf8')
      .replace('perceptual_loss_weight: 0.0', 'perceptual_loss_weight: 0.5')
      .replace('l2_warmup_steps: 0', 'l2_warmup_steps: 1'),
  );
  const { config } = parseGslrmTrainConfig(readYamlTree(cfgPath), cfgPath);
  const weights = randomGslrmWeights(config.model, 5);
  let s = 1;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.1;
  const entries: Array<[string, ReturnType<typeof torchTensor>]> = gslrmParamSpec(config.model).map((p) => [
    p.key,
    torchTensor(weights.get(p.key)!, p.shape),
  ]);
  for (const v of vggSpec())
    entries.push([v.key, torchTensor(Float32Array.from({ length: v.shape.reduce((a, b) => a * b, 1) }, rnd), v.shape)]);
  const start = join(root, 'start.pt');
  await saveTorch(start, pyDict([['model', pyDict(entries, true)]]));
  const r = await run(
    process.execPath,
    [BIN, 'train', 'gslrm', '--config', cfgPath, '--load', start, '--json', '--threads', '1'],
    { maxBuffer: 16 << 20 },
  );
  assert.match(r.stderr, /initialising weights from .*start\.pt/);
  const rows = lossLines(r.stdout);
  assert.equal(rows[0]!.perceptual, undefined, 'pass 0 is inside l2_warmup_steps');
  assert.ok(rows[1]!.perceptual! > 0, 'pass 1 adds the perceptual loss');
  assert.ok(Math.abs(rows[1]!.loss - (rows[1]!.l2 + 0.5 * rows[1]!.perceptual!)) < 1e-9);
  const f = await TorchFile.open(join(dir, listCkpt(dir)));
  assert.ok(f.keys().includes(`model.${VGG_PREFIX}conv16.weight`));
  await f.close();
});

const listCkpt = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith('ckpt_'))
    .sort()
    .pop()!;

test('train gslrm: SIGTERM writes a checkpoint at the current pass and exits 0; a torn newest checkpoint falls back to the previous one', async () => {
  const dir = join(root, 'run-term');
  const cfg = writeSmallConfig(join(root, 'term.yaml'), {
    dataset: join(data, 'data_gslrm_train.txt'),
    checkpointDir: dir,
    passes: 200,
    checkpointEvery: 2,
  });
  const args = [BIN, 'train', 'gslrm', '--config', cfg, '--json', '--threads', '1'];
  const { code, stderr } = await runUntilSignal(args, (row) => row.step >= 3, 'SIGTERM');
  assert.equal(code, 0, stderr);
  const m = /stopped at pass (\d+) of \d+; last checkpoint .*ckpt_(\d+)\.pt/.exec(stderr);
  assert.ok(m, stderr);
  assert.equal(Number(m[1]), Number(m[2]), 'the checkpoint is of the pass it stopped at');
  const stoppedAt = Number(m[1]);
  // Tear the newest checkpoint (a crash mid-copy, a full disk): the next run reports it and resumes from the one before.
  const newest = join(
    dir,
    readdirSync(dir)
      .filter((n) => n.startsWith('ckpt_'))
      .sort()
      .pop()!,
  );
  writeFileSync(newest, readFileSync(newest).subarray(0, 1000));
  const again = await run(process.execPath, [...args, '--stop-after-minutes', '0.0001'], { maxBuffer: 16 << 20 });
  assert.match(again.stderr, /skipping unreadable checkpoint .*ckpt_/);
  assert.match(
    again.stderr,
    new RegExp(`resuming from .*ckpt_0*${stoppedAt % 2 === 0 ? stoppedAt - 2 : stoppedAt - 1}\\.pt`),
  );
});
