/**
 * The web app's HTTP server: the built UI, and a JSON API over one job queue.
 *
 *   GET  /api/config                 controls (ranges, defaults), limits, model state, examples
 *   GET  /api/examples/NAME          an example photo
 *   POST /api/jobs                   multipart: image + autoCrop, guidanceScale, steps, seed → 202 job
 *   GET  /api/jobs/ID                the job (JobView)
 *   GET  /api/jobs/ID/events         server-sent events: one `job` event (a JobView) per change, until it ends
 *   GET  /api/jobs/ID/files/NAME     a result file (input.png, multiview.png, output.png, turntable.mp4, gaussians.ply)
 *   GET  /api/jobs/ID/files/viewer.ply  the Gaussians in the standard 3DGS layout, for the browser's viewer
 *   GET  /api/jobs/ID/NAME.zip       all result files
 *   …    /api/worker/…               with a Redis queue: the file exchange for workers (src/queue/exchange.ts)
 *
 * Errors are JSON `{ "error": "..." }` in plain words with a fitting status.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RESULT_FILES, type JobRunner, type ResultFile } from './runner.ts';
import { JOB_ID_PATTERN, JobQueue, QueueFullError, type JobView } from './jobs.ts';
import { CONTROLS, SettingsError, parseSettings } from './settings.ts';
import { ACCEPTED_FORMATS, UploadError, readUpload } from './upload.ts';
import { WEB_DIST, resolveUnder, sendFile, sendZip } from './files.ts';
import { VIEWER_FILE, ensureViewerPly } from './viewer-file.ts';
import type { FileExchange } from '../queue/exchange.ts';

export interface ServerOptions {
  runner: JobRunner;
  /** Folder for the jobs' uploads and results. */
  root: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  queueSize?: number;
  /** Finished jobs whose files are kept. */
  keepJobs?: number;
  /** Largest accepted photo, bytes (default 20 MiB). */
  maxUploadBytes?: number;
  /** Folder of example photos (*.png, *.jpg, *.jpeg), listed sorted as the reference does. */
  examplesDir?: string;
  /** The built UI (default web/dist). */
  webDist?: string;
  /** Jobs handed to the runner at once (JobQueueOptions.concurrency). */
  concurrency?: number;
  /** With a remote runner: the file exchange its workers use, served under /api/worker/. */
  exchange?: FileExchange;
  log?: (message: string) => void;
}

export interface RunningServer {
  url: string;
  server: Server;
  queue: JobQueue;
  close(): Promise<void>;
}

export const DEFAULT_MAX_UPLOAD = 20 * 2 ** 20;
const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  // Everything comes from this server; Spark compiles its inlined WebAssembly and runs its sort worker from a blob.
  'Content-Security-Policy': [
    "default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "worker-src 'self' blob:", "img-src 'self' blob: data:",
    "media-src 'self' blob:", "connect-src 'self' blob: data:", "object-src 'none'",
    "base-uri 'none'", "frame-ancestors 'none'",
  ].join('; '),
};

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function listExamples(dir: string | undefined): Promise<string[]> {
  if (!dir) return [];
  try {
    return (await readdir(dir)).filter((f) => /^[\w.-]+\.(png|jpe?g)$/i.test(f)).sort();
  } catch {
    return [];
  }
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const queue = new JobQueue({
    runner: opts.runner, root: opts.root, capacity: opts.queueSize ?? 10, keep: opts.keepJobs ?? 100, log,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
  const maxUploadBytes = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD;
  const webDist = opts.webDist ?? WEB_DIST;
  const examples = await listExamples(opts.examplesDir);

  // Models load in the background while the UI is already served; jobs wait for them.
  const models: { state: 'loading' | 'ready' | 'failed'; error?: string } = { state: 'loading' };
  opts.runner.ready().then(
    () => { models.state = 'ready'; },
    (e: unknown) => {
      models.state = 'failed';
      models.error = e instanceof Error ? e.message.split('\n')[0] : String(e);
      log(`models could not be loaded: ${models.error}`);
    },
  );

  function jobOr404(id: string): JobView {
    const job = JOB_ID_PATTERN.test(id) ? queue.get(id) : undefined;
    if (!job) throw new HttpError(404, 'no such job (the id is wrong, or the job is old and its files were deleted)');
    return job;
  }

  async function submit(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Refusals read the body away first, so that the client gets the answer rather than a reset connection.
    const discardBody = () => new Promise((r) => req.on('end', r).on('close', r).resume());
    if (models.state === 'failed') {
      await discardBody();
      throw new HttpError(503, `the server cannot run jobs: the models could not be loaded (${models.error})`);
    }
    if (queue.waitingCount >= queue.capacity) {
      await discardBody();
      throw new HttpError(503, `the queue is full (${queue.capacity} jobs are waiting); please try again in a few minutes`, { 'Retry-After': '60' });
    }
    const upload = await readUpload(req, { maxBytes: maxUploadBytes });
    const settings = parseSettings(upload.fields);
    const job = queue.submit(upload.bytes, upload.format, settings);
    sendJson(res, 202, job, { Location: `/api/jobs/${job.id}` });
  }

  function events(req: IncomingMessage, res: ServerResponse, id: string): void {
    const first = jobOr404(id);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    let unsubscribe = () => {};
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    const stop = () => { clearInterval(heartbeat); unsubscribe(); };
    const send = (v: JobView) => {
      res.write(`event: job\ndata: ${JSON.stringify(v)}\n\n`);
      if (v.status === 'done' || v.status === 'failed') {
        stop();
        res.end();
      }
    };
    req.on('close', stop);
    unsubscribe = queue.subscribe(id, send);
    send(first);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (opts.exchange && (await opts.exchange.handle(req, res))) return;
    const parts = url.pathname.split('/').slice(1);
    const method = req.method ?? 'GET';
    const isGet = method === 'GET' || method === 'HEAD';

    if (parts[0] === 'api') {
      const [, what, id, sub, name] = parts;
      if (what === 'config' && parts.length === 2 && isGet) {
        return sendJson(res, 200, {
          controls: CONTROLS, maxUploadBytes, acceptedFormats: ACCEPTED_FORMATS,
          queue: { capacity: queue.capacity, waiting: queue.waitingCount },
          models: {
            ...models,
            ...(models.state === 'loading' && opts.runner.loadProgress?.() ? { progress: opts.runner.loadProgress() } : {}),
            ...(models.state === 'ready' ? opts.runner.about?.() ?? {} : {}),
          },
          examples: examples.map((e) => ({ name: e, url: `/api/examples/${encodeURIComponent(e)}` })),
          resultFiles: RESULT_FILES,
        });
      }
      if (what === 'examples' && parts.length === 3 && isGet) {
        const file = examples.find((e) => e === id);
        if (!file) throw new HttpError(404, 'no such example');
        return sendFile(req, res, join(opts.examplesDir!, file), { cacheControl: 'public, max-age=3600' });
      }
      if (what === 'jobs' && parts.length === 2) {
        if (method !== 'POST') throw new HttpError(405, 'use POST to submit a job', { Allow: 'POST' });
        return submit(req, res);
      }
      if (what === 'jobs' && id !== undefined && isGet) {
        if (parts.length === 3) return sendJson(res, 200, jobOr404(id));
        if (parts.length === 4 && sub === 'events') return events(req, res, id);
        const job = jobOr404(id);
        const dir = queue.resultDir(id);
        if (parts.length === 5 && sub === 'files' && (RESULT_FILES as readonly string[]).includes(name!)) {
          if (!dir) throw new HttpError(409, `the job is ${job.status}; its files exist once it is done`);
          return sendFile(req, res, join(dir, name as ResultFile), {
            cacheControl: 'private, max-age=3600',
            ...(url.searchParams.has('download') ? { download: `facelift-${id.slice(0, 8)}-${name}` } : {}),
          });
        }
        if (parts.length === 5 && sub === 'files' && name === VIEWER_FILE) {
          if (!dir) throw new HttpError(409, `the job is ${job.status}; its files exist once it is done`);
          return sendFile(req, res, await ensureViewerPly(dir), { cacheControl: 'private, max-age=3600' });
        }
        if (parts.length === 4 && job.zip === url.pathname) {
          if (!dir) throw new HttpError(409, `the job is ${job.status}; its files exist once it is done`);
          // result.json (settings, timings, versions), where the runner writes one, goes into the zip too.
          const names = [...RESULT_FILES, ...(existsSync(join(dir, 'result.json')) ? ['result.json'] : [])];
          return sendZip(res, sub!, names.map((f) => [f, join(dir, f)] as [string, string]));
        }
      }
      throw new HttpError(404, `no such API route: ${method} ${url.pathname}`);
    }

    if (!isGet) throw new HttpError(405, `${method} is not allowed here`, { Allow: 'GET, HEAD' });
    const path = await resolveUnder(webDist, url.pathname === '/' ? '/index.html' : url.pathname);
    if (path) {
      const immutable = url.pathname.startsWith('/assets/');
      return sendFile(req, res, path, { cacheControl: immutable ? 'public, max-age=31536000, immutable' : 'no-cache' });
    }
    if (url.pathname === '/') {
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`The web UI is not built (no ${join(webDist, 'index.html')}). Run "npm run build:web" in the facelift folder, then reload.\n`);
      return;
    }
    throw new HttpError(404, `not found: ${url.pathname}`);
  }

  const server = createServer((req, res) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    route(req, res).catch((e: unknown) => {
      let status = 500, message = 'internal error; the details are in the server log', headers: Record<string, string> = {};
      if (e instanceof HttpError) ({ status, message, headers } = e);
      else if (e instanceof UploadError) ({ status, message } = e);
      else if (e instanceof SettingsError) [status, message] = [400, e.message];
      else if (e instanceof QueueFullError) [status, message, headers] = [503, e.message, { 'Retry-After': '60' }];
      else log(`${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (status === 413 && !req.readableEnded) headers.Connection = 'close';
      sendJson(res, status, { error: message }, headers);
    });
  });
  server.keepAliveTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 7860, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    server,
    queue,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await queue.close();
      await closed;
    },
  };
}
