import { existsSync, lstatSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { copyFile, link, mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { UserError } from '../util/errors.ts';
import { listRepoFiles, resolveRevision, resolveUrl } from './hf-api.ts';
import type { FetchFn, HubClient, RepoFile } from './hf-api.ts';
import { blobEtag, downloadFile, fileMatches } from './hf-download.ts';
import { filterFiles, hubSettings, isCommitHash, repoFolderName } from './hf-env.ts';
import type { HubSettings } from './hf-env.ts';

export interface SnapshotProgress {
  /** The file being transferred (or linked from the cache). */
  file: string;
  fileIndex: number;
  fileCount: number;
  /** Bytes done over all files, counting files already present. */
  bytes: number;
  totalBytes: number;
}

export interface SnapshotOptions {
  repo: string;
  /** Branch, tag or commit hash; default "main". */
  revision?: string;
  /** Python-fnmatch patterns, as huggingface_hub's allow_patterns / ignore_patterns. */
  allowPatterns?: string[];
  ignorePatterns?: string[];
  /** Also mirror the files into this folder, like `snapshot_download(local_dir=…)` (the reference's `checkpoints/`). */
  localDir?: string;
  /** Overrides of the environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE/HF_HOME, HF_HUB_OFFLINE). */
  settings?: Partial<HubSettings>;
  fetch?: FetchFn;
  /** Resume attempts per file after a dropped connection (default 3). */
  retries?: number;
  retryDelayMs?: number;
  /** Abort and resume a transfer that receives nothing for this long (default 60 s). */
  stallTimeoutMs?: number;
  onProgress?: (p: SnapshotProgress) => void;
}

export interface SnapshotResult {
  commit: string;
  /** `<cache>/models--org--name/snapshots/<commit>`. */
  snapshotDir: string;
  /** Where the files are for the caller: `localDir` if given, else `snapshotDir`. */
  dir: string;
  /** Repo paths present after the call. */
  files: string[];
  /** Repo paths that were fetched over the network by this call. */
  downloaded: string[];
}

/**
 * Downloads a repo snapshot into the standard Hugging Face cache (`models--org--name/{blobs,refs,snapshots}`,
 * snapshot entries are relative symlinks to blobs), so caches are shared with huggingface_hub. Files already
 * in the cache are not fetched again; interrupted files resume; every file is checked against the listed size
 * and sha256/git-sha1. With HF_HUB_OFFLINE=1 (or settings.offline) no request is made and the cached snapshot
 * of `revision` is used.
 */
export async function snapshotDownload(opts: SnapshotOptions): Promise<SnapshotResult> {
  const settings = { ...hubSettings(), ...opts.settings };
  const client: HubClient = { settings, fetch: opts.fetch ?? fetch };
  const revision = opts.revision ?? 'main';
  if (!/^[\w.-]+\/[\w.-]+$/.test(opts.repo)) throw new UserError(`"${opts.repo}" is not a repo id of the form org/name`);
  const repoDir = join(settings.cacheDir, repoFolderName(opts.repo));
  if (settings.offline) return offlineSnapshot(opts, repoDir, revision);

  const commit = isCommitHash(revision) ? revision : await resolveRevision(client, opts.repo, revision);
  const files = filterFiles(await listRepoFiles(client, opts.repo, commit), opts.allowPatterns, opts.ignorePatterns);
  if (!isCommitHash(revision)) {
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', revision), commit);
  }
  const snapshotDir = join(repoDir, 'snapshots', commit);
  const totalBytes = files.reduce((a, f) => a + (f.lfs?.size ?? f.size), 0);
  let bytes = 0;
  const downloaded: string[] = [];
  for (const [i, f] of files.entries()) {
    const size = f.lfs?.size ?? f.size;
    const report = () => opts.onProgress?.({ file: f.path, fileIndex: i, fileCount: files.length, bytes, totalBytes });
    report();
    if (opts.localDir && (await localFileCurrent(opts.localDir, f))) {
      bytes += size;
      report();
      continue;
    }
    const blob = join(repoDir, 'blobs', blobEtag(f));
    if (!(existsSync(blob) && statSync(blob).size === size)) {
      await downloadFile(client, resolveUrl(settings, opts.repo, commit, f.path), f, blob, {
        retries: opts.retries ?? 3,
        retryDelayMs: opts.retryDelayMs ?? 500,
        ...(opts.stallTimeoutMs !== undefined ? { stallTimeoutMs: opts.stallTimeoutMs } : {}),
        onBytes: (n) => { bytes += n; report(); },
      });
      downloaded.push(f.path);
    } else {
      bytes += size;
    }
    await linkIntoSnapshot(blob, join(snapshotDir, f.path));
    if (opts.localDir) await materialise(blob, opts.localDir, f, commit);
    report();
  }
  return { commit, snapshotDir, dir: opts.localDir ?? snapshotDir, files: files.map((f) => f.path), downloaded };
}

async function offlineSnapshot(opts: SnapshotOptions, repoDir: string, revision: string): Promise<SnapshotResult> {
  const refFile = join(repoDir, 'refs', revision);
  const commit = isCommitHash(revision) ? revision : existsSync(refFile) ? readFileSync(refFile, 'utf8').trim() : null;
  const snapshotDir = commit ? join(repoDir, 'snapshots', commit) : '';
  if (!commit || !existsSync(snapshotDir)) {
    throw new UserError(`offline mode (HF_HUB_OFFLINE) is on and ${opts.repo}@${revision} is not in the cache ${dirname(repoDir)}; ` +
      'run `facelift weights download` with network access first, or unset HF_HUB_OFFLINE');
  }
  const paths = filterFiles(walk(snapshotDir).map((path) => ({ path })), opts.allowPatterns, opts.ignorePatterns).map((f) => f.path);
  if (opts.localDir) {
    for (const p of paths) {
      const dest = join(opts.localDir, p);
      if (!existsSync(dest)) await placeFile(realpathSync(join(snapshotDir, p)), dest);
    }
  }
  return { commit, snapshotDir, dir: opts.localDir ?? snapshotDir, files: paths, downloaded: [] };
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, base));
    else out.push(relative(base, p).split('\\').join('/'));
  }
  return out;
}

/** `snapshots/<commit>/<path>` → `../../blobs/<etag>` (relative, as huggingface_hub makes them); a copy where symlinks fail. */
async function linkIntoSnapshot(blob: string, entry: string): Promise<void> {
  const target = relative(dirname(entry), blob);
  if (lstatSync(entry, { throwIfNoEntry: false })?.isSymbolicLink() && (await readlink(entry)) === target) return;
  await mkdir(dirname(entry), { recursive: true });
  await rm(entry, { force: true });
  try {
    await symlink(target, entry);
  } catch {
    await copyFile(blob, entry);
  }
}

/** Hard link (or copy) `src` to `dest` via a temporary name, so `dest` is never partial. */
async function placeFile(src: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  try {
    await link(src, tmp);
  } catch {
    await copyFile(src, tmp);
  }
  await rename(tmp, dest);
}

/** huggingface_hub's local_dir bookkeeping: `<dir>/.cache/huggingface/download/<path>.metadata`. */
const metadataPath = (localDir: string, path: string) => join(localDir, '.cache', 'huggingface', 'download', `${path}.metadata`);

async function localFileCurrent(localDir: string, f: RepoFile): Promise<boolean> {
  const dest = join(localDir, f.path);
  const size = f.lfs?.size ?? f.size;
  if (!existsSync(dest) || statSync(dest).size !== size) return false;
  const meta = metadataPath(localDir, f.path);
  if (existsSync(meta) && readFileSync(meta, 'utf8').split('\n')[1] === blobEtag(f)) return true;
  return fileMatches(dest, f);
}

async function materialise(blob: string, localDir: string, f: RepoFile, commit: string): Promise<void> {
  await placeFile(blob, join(localDir, f.path));
  const meta = metadataPath(localDir, f.path);
  await mkdir(dirname(meta), { recursive: true });
  await writeFile(meta, `${commit}\n${blobEtag(f)}\n${Date.now() / 1000}\n`);
}

export const OFFICIAL_REPO = 'wlyu/OpenFaceLift';
/** What inference needs from the official repo (relative to the weights folder). */
export const REQUIRED_WEIGHTS = ['mvdiffusion/pipeckpts/model_index.json', 'gslrm/ckpt_0000000000021125.pt'];

export interface EnsureWeightsOptions extends Omit<SnapshotOptions, 'repo' | 'localDir'> {
  repo?: string;
  /** The weights folder (reference layout: `checkpoints/`). Default "checkpoints". */
  dir?: string;
  /** Shorthand for settings.offline. */
  offline?: boolean;
  /** Paths that must exist under `dir`; default REQUIRED_WEIGHTS (for the official repo). */
  required?: string[];
}

/**
 * The weights folder for inference: returned at once when the required files are there (no network),
 * otherwise the repo is downloaded through the cache into `dir` (or, offline, copied from the cache).
 */
export async function ensureWeights(opts: EnsureWeightsOptions = {}): Promise<string> {
  const repo = opts.repo ?? OFFICIAL_REPO;
  const dir = opts.dir ?? 'checkpoints';
  const required = opts.required ?? (repo === OFFICIAL_REPO ? REQUIRED_WEIGHTS : []);
  const missing = () => required.filter((p) => !existsSync(join(dir, p)));
  if (required.length && missing().length === 0) return dir;
  const settings = { ...opts.settings, ...(opts.offline !== undefined ? { offline: opts.offline } : {}) };
  await snapshotDownload({ ...opts, repo, localDir: dir, settings });
  const still = missing();
  if (still.length) {
    throw new UserError(`${repo} was downloaded into ${dir} but ${still.join(', ')} ${still.length > 1 ? 'are' : 'is'} missing ` +
      '(wrong repo or revision?)');
  }
  return dir;
}
