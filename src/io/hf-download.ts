import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../util/errors.ts';
import { HubHttpError, hubRequest } from './hf-api.ts';
import type { HubClient, RepoFile } from './hf-api.ts';

/** The name the hub (and huggingface_hub's cache) gives a file's blob: its sha256 if LFS, else its git sha1. */
export function blobEtag(f: RepoFile): string {
  return f.lfs ? f.lfs.sha256 : f.oid;
}

/** A hash that, fed the content, gives the file's etag: sha256 for LFS files, git's blob sha1 otherwise. */
function contentHash(f: RepoFile): Hash {
  if (f.lfs) return createHash('sha256');
  const h = createHash('sha1');
  h.update(`blob ${f.size}\0`);
  return h;
}

async function hashFile(path: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
}

/** Whether an existing file has the content the hub lists (size, then hash). */
export async function fileMatches(path: string, f: RepoFile): Promise<boolean> {
  if (!existsSync(path) || statSync(path).size !== expectedSize(f)) return false;
  const h = contentHash(f);
  await hashFile(path, h);
  return h.digest('hex') === blobEtag(f);
}

class CorruptDownloadError extends UserError {}

const expectedSize = (f: RepoFile) => (f.lfs ? f.lfs.size : f.size);

export interface BlobDownloadOptions {
  /** Extra attempts after a dropped connection; each one resumes with an HTTP Range request. */
  retries?: number;
  /** Called with the number of new bytes as they arrive (negative when a restart discards bytes). */
  onBytes?: (n: number) => void;
  /** Milliseconds before the first retry (doubles each time). */
  retryDelayMs?: number;
  /** Abort (and retry/resume) when no byte arrives for this long; default 60 s. */
  stallTimeoutMs?: number;
}

/**
 * Downloads `url` into `dest`, via `dest + ".incomplete"`: an interrupted transfer keeps the partial file and
 * the next attempt (in this call or a later run) resumes with `Range: bytes=N-`. The result is checked against
 * the listed size and sha256 (LFS) or git sha1; on a mismatch the partial file is deleted and nothing is
 * written to `dest`. `dest` only ever appears complete (rename).
 */
export async function downloadFile(client: HubClient, url: string, file: RepoFile, dest: string, opts: BlobDownloadOptions = {}): Promise<void> {
  const total = expectedSize(file);
  const etag = blobEtag(file);
  const partial = `${dest}.incomplete`;
  await mkdir(dirname(dest), { recursive: true });
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    let have = existsSync(partial) ? statSync(partial).size : 0;
    if (have > total) {
      await truncate(partial, 0);
      opts.onBytes?.(-have);
      have = 0;
    }
    const hash = contentHash(file);
    if (have > 0) await hashFile(partial, hash);
    const abort = new AbortController();
    const stallMs = opts.stallTimeoutMs ?? 60_000;
    let timer = setTimeout(() => abort.abort(), stallMs);
    const alive = () => { clearTimeout(timer); timer = setTimeout(() => abort.abort(), stallMs); };
    try {
      if (have < total) {
        const res = await hubRequest(client, url, { signal: abort.signal, ...(have > 0 ? { headers: { range: `bytes=${have}-` } } : {}) });
        const range = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
        if (have > 0 && !(res.status === 206 && range && Number(range[1]) === have)) {
          // The server ignored or misread the range: start again from byte 0.
          clearTimeout(timer);
          await res.body?.cancel();
          await truncate(partial, 0);
          opts.onBytes?.(-have);
          continue;
        }
        const fh = await open(partial, have > 0 ? 'a' : 'w');
        try {
          if (!res.body) throw new Error('empty response body');
          for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
            if (have + chunk.length > total) {
              throw new CorruptDownloadError(`${file.path}: the hub sent more than the listed ${total} bytes; the damaged download was deleted`);
            }
            alive();
            await fh.write(chunk);
            hash.update(chunk);
            have += chunk.length;
            opts.onBytes?.(chunk.length);
          }
        } finally {
          await fh.close();
        }
      }
    } catch (err) {
      clearTimeout(timer);
      if (err instanceof CorruptDownloadError) {
        await rm(partial, { force: true });
        throw err;
      }
      if (err instanceof HubHttpError && err.status === 416 && attempt < retries) {
        // The partial file does not fit the server's file: start over.
        await truncate(partial, 0);
        opts.onBytes?.(-have);
        continue;
      }
      // HTTP 4xx will not go away by retrying (the partial file is kept for a later run).
      if (err instanceof HubHttpError && err.status < 500) throw err;
      if (attempt < retries) {
        await new Promise((r) => setTimeout(r, (opts.retryDelayMs ?? 500) * 2 ** attempt));
        continue;
      }
      const why = abort.signal.aborted ? `no data for ${stallMs / 1000} s` : (err as Error).message;
      throw new UserError(`download of ${file.path} was interrupted after ${have} of ${total} bytes ` +
        `(${why}); run the command again to resume`, { cause: err });
    }
    clearTimeout(timer);
    if (have < total) {
      if (attempt < retries) continue;
      throw new UserError(`download of ${file.path} ended early after ${have} of ${total} bytes; run the command again to resume`);
    }
    const digest = hash.digest('hex');
    if (digest !== etag) {
      await rm(partial, { force: true });
      opts.onBytes?.(-have);
      throw new UserError(`checksum mismatch for ${file.path}: expected ${file.lfs ? 'sha256' : 'git sha1'} ${etag}, got ${digest}; ` +
        'the damaged download was deleted, run the command again');
    }
    await rename(partial, dest);
    return;
  }
}
