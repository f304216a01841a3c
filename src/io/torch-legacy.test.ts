import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PyDict } from './pickle.ts';
import { TorchFile } from './torch-pt.ts';

const fixture = (n: string) => new URL(`./testdata/${n}`, import.meta.url).pathname;

test('legacy (pre-1.6) torch.save files: every tensor, shared storages, views and non-contiguous tensors', async () => {
  const want = JSON.parse(readFileSync(fixture('legacy.json'), 'utf8')) as Record<string, number[] | number>;
  const f = await TorchFile.open(fixture('legacy.pt'));
  try {
    assert.equal((f.root as PyDict).get('epoch'), 7);
    for (const k of ['conv.weight', 'conv.bias', 'half', 'view', 't', 'base']) {
      const got = await f.readF32(`state_dict.${k}`);
      (want[k] as number[]).forEach((w, i) => assert.ok(Math.abs(got[i]! - w) < 1e-6, `${k}[${i}]: ${got[i]} vs ${w}`));
    }
    assert.deepEqual(f.info('state_dict.conv.weight').shape, [2, 3, 3, 3]);
    assert.deepEqual([...(await f.read('state_dict.ids') as BigInt64Array)].map(Number), want.ids);
  } finally {
    await f.close();
  }
  const dir = mkdtempSync(join(tmpdir(), 'legacy-'));
  try {
    const bytes = readFileSync(fixture('legacy.pt'));
    writeFileSync(join(dir, 'cut.pt'), bytes.subarray(0, bytes.length - 40));
    await assert.rejects(TorchFile.open(join(dir, 'cut.pt')), /truncated/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
