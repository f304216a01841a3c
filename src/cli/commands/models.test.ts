import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = new URL('../../../bin/facelift.js', import.meta.url).pathname;

test('facelift models summary --json: official parameter and key counts', async () => {
  const { stdout } = await run(process.execPath, [BIN, 'models', 'summary', '--json']);
  const out = JSON.parse(stdout) as { components: { name: string; params: number; keys: number }[] };
  assert.deepEqual(Object.keys(out), ['components']);
  const byName = new Map(out.components.map((c) => [c.name, c]));
  for (const c of out.components) assert.deepEqual(Object.keys(c), ['name', 'params', 'keys']);
  assert.deepEqual(byName.get('unet'), { name: 'unet', params: 870_184_644, keys: 690 });
  assert.deepEqual(byName.get('vae'), { name: 'vae', params: 83_653_863, keys: 248 });
  assert.deepEqual(byName.get('image_encoder'), { name: 'image_encoder', params: 632_076_800, keys: 520 });
  assert.equal(byName.get('gslrm')?.params, 303_565_824);
  // 23-layer OpenCLIP-H text tower: 49408·1024 + 77·1024 + 23·12,596,224 + 2048
  assert.deepEqual(byName.get('text_encoder'), { name: 'text_encoder', params: 340_387_840, keys: 2 + 23 * 16 + 2 });
});

test('facelift models summary prints a table', async () => {
  const { stdout } = await run(process.execPath, [BIN, 'models', 'summary']);
  assert.match(stdout, /^unet\s+870,184,644\s+690$/m);
  assert.match(stdout, /^gslrm\s+303,565,824\s+\d+$/m);
});
