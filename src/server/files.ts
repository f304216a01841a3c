/**
 * Sending files: the built UI (web/dist), a job's result files (with byte ranges, so the video can seek), and the
 * zip of all results, streamed with fflate. Every path is built from a fixed name or checked to stay inside its
 * root folder; nothing a client sends becomes a path component unchecked.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { extname, resolve, sep } from 'node:path';
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.mp4': 'video/mp4',
  '.ply': 'application/octet-stream',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentType(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The file under `root` that the URL path names, or undefined if it would leave `root` (.., encoded slashes,
 * NUL, absolute tricks) or is not a regular file.
 */
export async function resolveUnder(root: string, urlPath: string): Promise<string | undefined> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const base = resolve(root);
  const full = resolve(base, `.${decoded.startsWith('/') ? '' : '/'}${decoded}`);
  if (full !== base && !full.startsWith(base + sep)) return undefined;
  try {
    return (await stat(full)).isFile() ? full : undefined;
  } catch {
    return undefined;
  }
}

export interface SendOptions {
  cacheControl?: string;
  /** Content-Disposition attachment name. */
  download?: string;
}

/** Sends a file, honouring a single `Range: bytes=a-b` (video seeking) and HEAD. */
export async function sendFile(req: IncomingMessage, res: ServerResponse, path: string, opts: SendOptions = {}): Promise<void> {
  const size = (await stat(path)).size;
  const headers: Record<string, string | number> = {
    'Content-Type': contentType(path),
    'Accept-Ranges': 'bytes',
    'Cache-Control': opts.cacheControl ?? 'no-cache',
  };
  if (opts.download) headers['Content-Disposition'] = `attachment; filename="${opts.download.replace(/[^\w.-]/g, '_')}"`;
  let start = 0, end = size - 1, status = 200;
  const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
  if (range && (range[1] || range[2])) {
    if (range[1]) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(Number(range[2]), size - 1);
    } else {
      start = Math.max(0, size - Number(range[2]));
    }
    if (start > end || start >= size) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['Content-Length'] = end - start + 1;
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(path, { start, end });
  stream.pipe(res);
  await once(stream, 'close');
}

/**
 * Streams a zip of `files` (name → path). Already-compressed formats are stored; the PLY, whose SH padding is
 * mostly zeros, is deflated at level 1.
 */
export async function sendZip(res: ServerResponse, name: string, files: ReadonlyArray<[string, string]>): Promise<void> {
  res.writeHead(200, {
    'Content-Type': 'application/zip',
    'Content-Disposition': `attachment; filename="${name.replace(/[^\w.-]/g, '_')}"`,
    'Cache-Control': 'no-cache',
  });
  const zip = new Zip((err, chunk, final) => {
    if (err) {
      res.destroy(err);
      return;
    }
    res.write(chunk);
    if (final) res.end();
  });
  for (const [entryName, path] of files) {
    const entry = extname(entryName) === '.ply' ? new ZipDeflate(entryName, { level: 1 }) : new ZipPassThrough(entryName);
    zip.add(entry);
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      if (res.destroyed) return;
      entry.push(chunk as Uint8Array);
      if (res.writableNeedDrain) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    entry.push(new Uint8Array(0), true);
  }
  zip.end();
}

/** The built UI's folder: web/dist beside src/. */
export const WEB_DIST = resolve(new URL('../../web/dist', import.meta.url).pathname);
