/**
 * The README's first command on a fresh machine: a clean copy of the repository's tracked files (with the installed
 * node_modules beside them, as `npm ci` leaves them), no network, an empty HOME, nothing in the environment that
 * points at weights — `node bin/facelift.js infer` must write every output for each bundled example, with the
 * shipped demo models, and say so. `--model official` there keeps the clear error about FaceLift's weights.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { OUTPUT_FILES } from '../../pipeline/run.ts';

const REPO = new URL('../../../', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'fl-first-run-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The tracked files of the repository (what a clone has), copied; node_modules linked. */
function cleanCopy(dir: string): void {
  const ls = spawnSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(ls.status, 0, ls.stderr);
  for (const f of ls.stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(REPO, f))) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(join(REPO, f), join(dir, f));
  }
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'), 'dir');
}

function freshEnv(home: string): NodeJS.ProcessEnv {
  const keep = ['PATH', 'LANG', 'TZ'];
  const env: NodeJS.ProcessEnv = Object.fromEntries(keep.filter((k) => process.env[k]).map((k) => [k, process.env[k]]));
  // No network: the hub client's own switch, and proxies that lead nowhere for anything else.
  return { ...env, HOME: home, HF_HUB_OFFLINE: '1', https_proxy: 'http://127.0.0.1:9', http_proxy: 'http://127.0.0.1:9' };
}

test('README first command: `node bin/facelift.js infer` in a fresh offline clone writes every output per example', { timeout: 900_000 }, () => {
  const clone = join(root, 'facelift-ts');
  const home = join(root, 'home');
  mkdirSync(home);
  cleanCopy(clone);
  const r = spawnSync(process.execPath, ['bin/facelift.js', 'infer'], { cwd: clone, env: freshEnv(home), encoding: 'utf8', timeout: 880_000 });
  assert.equal(r.status, 0, `exit ${r.status}\n${r.stderr.slice(-3000)}`);
  assert.match(r.stderr, /running facelift-ts's small demo models.*facelift weights download/);
  assert.match(r.stderr, /background removed with the bundled selfie segmenter/);
  const examples = readdirSync(join(clone, 'examples')).filter((f) => /\.(png|jpe?g)$/i.test(f));
  assert.ok(examples.length >= 4);
  for (const e of examples) {
    const out = join(clone, 'outputs', e.replace(/\..*$/, ''));
    for (const f of OUTPUT_FILES) assert.ok(existsSync(join(out, f)), `${e}: ${f}`);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
      model: string; preprocess: { matting: string }; weights: { mattingModel?: string };
    };
    assert.equal(result.model, 'demo');
    // Offline, the background still comes off: the segmenter that ships in an npm package did it.
    assert.equal(result.preprocess.matting, 'model');
    assert.equal(result.weights.mattingModel, 'npm:@mediapipe/selfie_segmentation/selfie_segmentation.tflite');
  }
  // Nothing was fetched into the empty home's caches.
  assert.equal(existsSync(join(home, '.cache/huggingface/hub/models--wlyu--OpenFaceLift')), false);

  const official = spawnSync(process.execPath, ['bin/facelift.js', 'infer', '--model', 'official', '-o', join(root, 'o2')],
    { cwd: clone, env: freshEnv(home), encoding: 'utf8', timeout: 120_000 });
  assert.equal(official.status, 1);
  assert.match(official.stderr, /the FaceLift weights .* offline mode is on/);
});
