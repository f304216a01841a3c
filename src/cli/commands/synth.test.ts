import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';

const run = promisify(execFile);
const BIN = new URL('../../../bin/facelift.js', import.meta.url).pathname;

test('facelift synth heads --layout mvdiffusion --no-ply --preview, and one-line errors for bad flags', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'synth-cli-'));
  try {
    const { stdout } = await run(process.execPath, [
      BIN, 'synth', 'heads', '-o', dir, '--count', '2', '--resolution', '32', '--layout', 'mvdiffusion', '--spacing', '0.03', '--no-ply', '--preview',
    ]);
    assert.match(stdout, /^wrote 2 heads \(mvdiffusion\) to /);
    assert.deepEqual((await readdir(dir)).sort(), ['mvdiffusion', 'preview']);
    assert.deepEqual((await readdir(join(dir, 'mvdiffusion'))).sort(), ['data_mvdiff_train.txt', 'data_mvdiff_val.txt', 'sample_000000', 'sample_000001']);
    assert.deepEqual((await readdir(join(dir, 'mvdiffusion', 'sample_000000'))).sort(),
      ['cam_000.png', 'cam_001.png', 'cam_002.png', 'cam_003.png', 'cam_004.png', 'cam_005.png', 'head.json']);
    // Contact sheet: 2 rows × 6 views of 32-px thumbnails with 4-px gutters.
    const meta = await sharp(join(dir, 'preview', 'contact_mvdiffusion_000.png')).metadata();
    assert.equal(meta.width, 6 * 32 + 7 * 4);
    assert.equal(meta.height, 2 * 32 + 3 * 4);

    // A second process with the same seed writes byte-identical images, head.json and contact sheet.
    const again = join(dir, 'again');
    const second = await run(process.execPath, [
      BIN, 'synth', 'heads', '-o', again, '--count', '2', '--resolution', '32', '--layout', 'mvdiffusion', '--spacing', '0.03', '--no-ply', '--preview', '--json',
    ]);
    const summary = JSON.parse(second.stdout) as { dir: string; heads: number; layouts: string[]; gaussians_mean: number; sheets: string[] };
    assert.equal(summary.dir, again);
    assert.equal(summary.heads, 2);
    assert.deepEqual(summary.layouts, ['mvdiffusion']);
    assert.ok(summary.gaussians_mean > 1000);
    assert.deepEqual(summary.sheets, [join(again, 'preview', 'contact_mvdiffusion_000.png')]);
    const digest = async (f: string): Promise<string> => createHash('sha256').update(await readFile(f)).digest('hex');
    for (const f of ['mvdiffusion/sample_000000/cam_000.png', 'mvdiffusion/sample_000001/cam_003.png', 'mvdiffusion/sample_000001/head.json', 'preview/contact_mvdiffusion_000.png']) {
      assert.equal(await digest(join(again, f)), await digest(join(dir, f)), f);
    }

    for (const [args, message] of [
      [['--count', '0'], 'facelift: --count must be an integer in 1..10000000, got "0"\n'],
      [['--count', '1', '--layout', 'nerf'], 'facelift: --layout must be gslrm, mvdiffusion or both, got "nerf"\n'],
      [['--count', '1', '--val-fraction', '1.5'], 'facelift: --val-fraction must be a number in [0, 1), got "1.5"\n'],
      // A file where a folder should be (not /proc: Node's recursive mkdir never returns there).
      [['--count', '1', '-o', join(dir, 'mvdiffusion', 'data_mvdiff_val.txt', 'out')],
        `facelift: cannot create output folder ${join(dir, 'mvdiffusion', 'data_mvdiff_val.txt', 'out', 'gslrm')}: ENOTDIR: not a directory, mkdir '${join(dir, 'mvdiffusion', 'data_mvdiff_val.txt', 'out', 'gslrm')}'\n`],
    ] as const) {
      await assert.rejects(run(process.execPath, [BIN, 'synth', 'heads', '-o', dir, ...args]), (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.equal(e.stderr, message);
        return true;
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
