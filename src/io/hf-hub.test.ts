import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockHub } from './testing/mock-hub.ts';
import { ensureWeights, snapshotDownload } from './hf-hub.ts';
import type { SnapshotProgress } from './hf-hub.ts';
import { listRepoFiles, resolveRevision } from './hf-api.ts';
import { hubSettings } from './hf-env.ts';

const REPO = 'org/tiny-face';
const files = [
  { path: 'README.md', data: Buffer.from('# tiny\n') },
  { path: 'gslrm/ckpt_0000000000021125.pt', data: randomBytes(300_000), lfs: true },
  { path: 'mvdiffusion/pipeckpts/model_index.json', data: Buffer.from('{"_class_name":"X"}') },
  { path: 'mvdiffusion/pipeckpts/unet/diffusion_pytorch_model.safetensors', data: randomBytes(200_000), lfs: true },
  { path: 'notes/a b.txt', data: Buffer.from('space in name') },
];
const CKPT = files[1]!;

const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'hub-')); dirs.push(d); return d; };
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function withHub<T>(fn: (hub: MockHub) => Promise<T>): Promise<T> {
  const hub = await new MockHub(REPO, files).start();
  try { return await fn(hub); } finally { await hub.stop(); }
}
const settingsFor = (hub: MockHub, cacheDir: string) => ({ endpoint: hub.url, cacheDir, token: null, offline: false });
const resolves = (hub: MockHub) => hub.requests.filter((r) => r.url.includes('/resolve/') || r.url.startsWith('/cdn/'));

test('list: revision → commit, recursive tree over several pages with sizes, git oids and LFS sha256', () => withHub(async (hub) => {
  const client = { settings: settingsFor(hub, tmp()), fetch };
  assert.equal(await resolveRevision(client, REPO, 'main'), hub.sha);
  const listed = await listRepoFiles(client, REPO, hub.sha);
  assert.deepEqual(listed.map((f) => f.path), files.map((f) => f.path));
  assert.equal(hub.requests.filter((r) => r.url.includes('/tree/')).length, 3); // 5 files, pages of 2
  assert.deepEqual(listed[1]!.lfs, { sha256: MockHub.sha256(CKPT.data), size: CKPT.data.length });
  assert.equal(listed[0]!.oid, MockHub.gitOid(files[0]!.data));
}));

test('download into the standard HF cache layout; a second run fetches nothing', () => withHub(async (hub) => {
  const cache = tmp();
  const progress: SnapshotProgress[] = [];
  const r = await snapshotDownload({ repo: REPO, settings: settingsFor(hub, cache), onProgress: (p) => progress.push({ ...p }) });
  const repoDir = join(cache, 'models--org--tiny-face');
  assert.equal(r.snapshotDir, join(repoDir, 'snapshots', hub.sha));
  assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), hub.sha);
  for (const f of files) {
    const entry = join(r.snapshotDir, f.path);
    assert.ok(lstatSync(entry).isSymbolicLink(), f.path);
    assert.match(readlinkSync(entry), new RegExp(`^(\\.\\./)+blobs/${hub.etag(f.path)}$`));
    assert.deepEqual(readFileSync(entry), f.data, f.path);
  }
  assert.deepEqual(readdirSync(join(repoDir, 'blobs')).sort(), files.map((f) => hub.etag(f.path)).sort());
  assert.equal(r.downloaded.length, files.length);
  const total = files.reduce((a, f) => a + f.data.length, 0);
  assert.deepEqual(progress.at(-1), { file: files.at(-1)!.path, fileIndex: 4, fileCount: 5, bytes: total, totalBytes: total });
  assert.ok(progress.every((p, i) => i === 0 || p.bytes >= progress[i - 1]!.bytes));

  const before = resolves(hub).length;
  const again = await snapshotDownload({ repo: REPO, settings: settingsFor(hub, cache) });
  assert.deepEqual(again.downloaded, []);
  assert.equal(resolves(hub).length, before);
}));

test('an interrupted file keeps its partial bytes and the next run resumes with Range', () => withHub(async (hub) => {
  const cache = tmp();
  hub.cutAfter.set(CKPT.path, 123_456);
  await assert.rejects(snapshotDownload({ repo: REPO, settings: settingsFor(hub, cache), retries: 0 }),
    /download of gslrm\/ckpt_0000000000021125\.pt was interrupted after 123456 of 300000 bytes.*run the command again to resume/);
  const blob = join(cache, 'models--org--tiny-face', 'blobs', hub.etag(CKPT.path));
  assert.equal(existsSync(blob), false, 'no complete-looking file');
  assert.equal(statSync(`${blob}.incomplete`).size, 123_456);
  assert.equal(existsSync(join(cache, 'models--org--tiny-face', 'snapshots', hub.sha, CKPT.path)), false);

  await snapshotDownload({ repo: REPO, settings: settingsFor(hub, cache), retries: 0 });
  // The Range header goes to /resolve and follows its 302 to the LFS CDN URL.
  const ranged = hub.requests.filter((r) => r.range);
  assert.deepEqual(ranged.map((r) => [r.url.split('/')[1], r.range]), [[REPO.split('/')[0], 'bytes=123456-'], ['cdn', 'bytes=123456-']]);
  assert.deepEqual(readFileSync(blob), CKPT.data);
  assert.equal(existsSync(`${blob}.incomplete`), false);
}));

test('a connection dropped mid-file is resumed within the same call (retries)', () => withHub(async (hub) => {
  const cache = tmp();
  hub.cutAfter.set(CKPT.path, 50_000);
  const r = await snapshotDownload({ repo: REPO, settings: settingsFor(hub, cache), retryDelayMs: 10 });
  assert.deepEqual(hub.requests.filter((x) => x.range && x.url.startsWith('/cdn/')).map((x) => x.range), ['bytes=50000-']);
  assert.deepEqual(readFileSync(join(r.snapshotDir, CKPT.path)), CKPT.data);
}));

test('a server that ignores Range gets the file again from byte 0 (no duplicated bytes)', () => withHub(async (hub) => {
  const cache = tmp();
  hub.cutAfter.set(CKPT.path, 1000);
  hub.ignoreRange = true;
  const r = await snapshotDownload({ repo: REPO, settings: settingsFor(hub, cache), retryDelayMs: 10 });
  assert.deepEqual(readFileSync(join(r.snapshotDir, CKPT.path)), CKPT.data);
  const cdn = `/cdn/${MockHub.sha256(CKPT.data)}`;
  assert.deepEqual(hub.requests.filter((x) => x.url === cdn).map((x) => x.range ?? 'full'), ['full', 'bytes=1000-', 'full']);
}));

test('a transfer that stalls (server goes silent) is aborted and resumed', () => withHub(async (hub) => {
  const cache = tmp();
  hub.stallAfter.set(CKPT.path, 70_000);
  const r = await snapshotDownload({ repo: REPO, settings: settingsFor(hub, cache), retries: 1, retryDelayMs: 10, stallTimeoutMs: 300 });
  assert.deepEqual(hub.requests.filter((x) => x.range && x.url.startsWith('/cdn/')).map((x) => x.range), ['bytes=70000-']);
  assert.deepEqual(readFileSync(join(r.snapshotDir, CKPT.path)), CKPT.data);
  hub.stallAfter.set(CKPT.path, 10);
  await assert.rejects(snapshotDownload({ repo: REPO, settings: settingsFor(hub, tmp()), retries: 0, stallTimeoutMs: 200 }),
    /interrupted after 10 of 300000 bytes \(no data for 0\.2 s\)/);
}));

test('a sha256 mismatch is an error and no corrupt file is kept', () => withHub(async (hub) => {
  const cache = tmp();
  hub.corrupt.add(CKPT.path);
  await assert.rejects(snapshotDownload({ repo: REPO, settings: settingsFor(hub, cache) }),
    new RegExp(`checksum mismatch for ${CKPT.path}: expected sha256 ${MockHub.sha256(CKPT.data)}, got [0-9a-f]{64}; the damaged download was deleted`));
  const blobs = join(cache, 'models--org--tiny-face', 'blobs');
  assert.deepEqual(readdirSync(blobs).filter((n) => n.startsWith(hub.etag(CKPT.path))), []);
  assert.equal(existsSync(join(cache, 'models--org--tiny-face', 'snapshots', hub.sha, CKPT.path)), false);
  // Regular (non-LFS) files are checked against their git blob sha1.
  hub.corrupt.clear();
  hub.corrupt.add('README.md');
  await assert.rejects(snapshotDownload({ repo: REPO, settings: settingsFor(hub, tmp()) }), /checksum mismatch for README\.md: expected git sha1/);
}));

test('HF_ENDPOINT, HF_HUB_CACHE and HF_TOKEN (as Bearer) come from the environment; HF_HUB_OFFLINE=1 uses only the cache', () => withHub(async (hub) => {
  const cache = tmp();
  const saved = { ...process.env };
  try {
    hub.requiredToken = 'hf_secret';
    Object.assign(process.env, { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '0' });
    delete process.env.HF_TOKEN;
    delete process.env.HUGGING_FACE_HUB_TOKEN;
    await assert.rejects(snapshotDownload({ repo: REPO }), /HTTP 401 \(the repo may be gated or private: set HF_TOKEN\)/);
    process.env.HF_TOKEN = 'hf_secret';
    const r = await snapshotDownload({ repo: REPO });
    assert.equal(r.snapshotDir, join(cache, 'models--org--tiny-face', 'snapshots', hub.sha));
    const hubRequests = hub.requests.filter((x) => !x.url.startsWith('/cdn/') && x.authorization === 'Bearer hf_secret');
    assert.ok(hubRequests.length >= 3 + files.length);

    process.env.HF_HUB_OFFLINE = '1';
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9'; // nothing listens there: any request would fail
    const n = hub.requests.length;
    const off = await snapshotDownload({ repo: REPO });
    assert.equal(hub.requests.length, n);
    assert.equal(off.commit, hub.sha);
    assert.deepEqual(off.files, files.map((f) => f.path).sort());
    const dir = tmp();
    assert.equal(await ensureWeights({ repo: REPO, dir, required: ['gslrm/ckpt_0000000000021125.pt'] }), dir);
    assert.deepEqual(readFileSync(join(dir, CKPT.path)), CKPT.data);
    await assert.rejects(snapshotDownload({ repo: 'org/other' }), /offline mode \(HF_HUB_OFFLINE\) is on and org\/other@main is not in the cache/);
    assert.equal(hubSettings().offline, true);
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}));

test('ensureWeights mirrors the repo into a plain folder (local_dir layout) and then needs no network', () => withHub(async (hub) => {
  const cache = tmp();
  const dir = join(tmp(), 'checkpoints');
  const settings = settingsFor(hub, cache);
  const required = ['gslrm/ckpt_0000000000021125.pt', 'mvdiffusion/pipeckpts/model_index.json'];
  assert.equal(await ensureWeights({ repo: REPO, dir, settings, required }), dir);
  for (const f of files) assert.deepEqual(readFileSync(join(dir, f.path)), f.data);
  const meta = readFileSync(join(dir, '.cache/huggingface/download', `${CKPT.path}.metadata`), 'utf8').split('\n');
  assert.deepEqual(meta.slice(0, 2), [hub.sha, hub.etag(CKPT.path)]);
  const n = hub.requests.length;
  await ensureWeights({ repo: REPO, dir, settings, required });
  assert.equal(hub.requests.length, n, 'present weights: no request at all');

  // A file removed from the folder is restored from the cache without downloading it again.
  rmSync(join(dir, CKPT.path));
  await ensureWeights({ repo: REPO, dir, settings, required });
  assert.equal(resolves(hub).length, files.length + 2); // 5 resolves + 2 CDN redirects from the first run only
  assert.deepEqual(readFileSync(join(dir, CKPT.path)), CKPT.data);

  // A local file that matches the hub's hash but has no metadata is accepted without a download.
  const dir2 = tmp();
  writeFileSync(join(dir2, 'README.md'), files[0]!.data);
  const r = await snapshotDownload({ repo: REPO, localDir: dir2, settings: settingsFor(hub, tmp()), allowPatterns: ['README.md'] });
  assert.deepEqual(r.downloaded, []);
  await assert.rejects(ensureWeights({ repo: REPO, dir: tmp(), settings, required: ['gslrm/missing.pt'] }), /gslrm\/missing\.pt is missing/);
}));
