import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = new URL('../../../bin/facelift.js', import.meta.url).pathname;
const G = '/work/shared/golden';

test('facelift ckpt inspect --json on the golden GS-LRM checkpoint', async () => {
  const { stdout } = await run(process.execPath, [BIN, 'ckpt', 'inspect', `${G}/gslrm-tiny/ckpt_0000000000000042.pt`, '--json']);
  const out = JSON.parse(stdout) as { tensors: Array<{ name: string; dtype: string; shape: number[] }>; total_params: number };
  assert.deepEqual(Object.keys(out), ['tensors', 'total_params']);
  const summary = JSON.parse(readFileSync(`${G}/gslrm-tiny/weights_summary.json`, 'utf8')) as Record<string, { shape: number[] }>;
  assert.deepEqual(out.tensors.map((t) => t.name).sort(), Object.keys(summary).map((k) => `model.${k}`).sort());
  for (const t of out.tensors) {
    assert.deepEqual(Object.keys(t), ['name', 'dtype', 'shape']);
    assert.equal(t.dtype, 'F32');
    assert.deepEqual(t.shape, summary[t.name.slice('model.'.length)]!.shape);
  }
  const total = Object.values(summary).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  assert.equal(out.total_params, total);
});

test('facelift ckpt inspect (text) on a diffusers folder, and a clear one-line error for a missing path', async () => {
  const { stdout } = await run(process.execPath, [BIN, 'ckpt', 'inspect', `${G}/pipeline-tiny/pipeckpts/vae`]);
  assert.match(stdout, /^decoder\.conv_in\.bias\s+F16\s+\[\d+\]$/m);
  assert.match(stdout, /248 tensors, total parameters: 334,383 \(334383\)\n$/);
  await assert.rejects(run(process.execPath, [BIN, 'ckpt', 'inspect', '/nonexistent/x.pt']), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 1);
    assert.equal(e.stderr, 'facelift: /nonexistent/x.pt does not exist\n');
    return true;
  });
});
