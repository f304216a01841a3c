import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MockHub } from '../../io/testing/mock-hub.ts';

const run = promisify(execFile);
const BIN = new URL('../../../bin/facelift.js', import.meta.url).pathname;

test('facelift weights download against a mock hub (HF_ENDPOINT), then offline', async () => {
  const files = [
    { path: 'gslrm/ckpt_0000000000021125.pt', data: Buffer.alloc(70_000, 7), lfs: true },
    { path: 'mvdiffusion/pipeckpts/model_index.json', data: Buffer.from('{}') },
    { path: 'README.md', data: Buffer.from('hi') },
  ];
  const hub = await new MockHub('wlyu/OpenFaceLift', files).start();
  const tmp = mkdtempSync(join(tmpdir(), 'weights-cli-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(tmp, 'cache'), HF_HUB_OFFLINE: '' };
    delete env.HF_TOKEN;
    const dir = join(tmp, 'checkpoints');
    const { stdout } = await run(process.execPath, [BIN, 'weights', 'download', '--dir', dir, '--exclude', '*.md'], { env });
    assert.equal(stdout, `wlyu/OpenFaceLift@${hub.sha.slice(0, 12)}: 2 files (2 downloaded) in ${dir}\n`);
    assert.deepEqual(readFileSync(join(dir, files[0]!.path)), files[0]!.data);
    assert.equal(existsSync(join(dir, 'README.md')), false);
    assert.ok(existsSync(join(tmp, 'cache', 'models--wlyu--OpenFaceLift', 'refs', 'main')));

    const dir2 = join(tmp, 'again');
    const off = await run(process.execPath, [BIN, 'weights', 'download', '--dir', dir2], { env: { ...env, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' } });
    assert.match(off.stdout, /2 files \(0 downloaded\)/);
    assert.deepEqual(readFileSync(join(dir2, files[0]!.path)), files[0]!.data);

    await assert.rejects(run(process.execPath, [BIN, 'weights', 'download', '--repo', 'nope/missing', '--dir', dir], { env }),
      (e: { code: number; stderr: string }) => e.code === 1 && /^facelift: hub request .* failed: HTTP 404/.test(e.stderr));
  } finally {
    await hub.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});
