/**
 * The file exchange: HTTP routes on the machine that enqueues portraits, through which workers fetch a job's photo
 * and hand back its result files. Redis holds only the small job records; an unfiltered PLY can be hundreds of MB.
 *
 *   GET  /api/worker/jobs/ID/input                         the photo
 *   PUT  /api/worker/jobs/ID/attempts/ATTEMPT/files/NAME   one result file (NAME from protocol.ts RESULT_NAMES)
 *   POST /api/worker/jobs/ID/attempts/ATTEMPT/commit       the attempt's files become the result, if none is yet
 *
 * Every route needs `Authorization: Bearer <the job's token>`; a wrong token or an unknown job is the same 404. An
 * attempt's files land in a folder of their own beside the result folder, and the first complete attempt to commit
 * is renamed into place: a job retried after a worker died is never reported twice, and a half-sent result is
 * never seen.
 */
import { timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ATTEMPT_PATTERN, ID_PATTERN, REQUIRED_NAMES, RESULT_NAMES, newToken } from './protocol.ts';

/** Largest result file accepted (an unfiltered official-size PLY is ~400 MB). */
export const MAX_RESULT_FILE = 4 * 2 ** 30;

interface Entry {
  token: string;
  input: string;
  outDir: string;
  done: boolean;
  resolve: () => void;
}

export class ExchangeError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class FileExchange {
  private readonly entries = new Map<string, Entry>();

  /**
   * Offers `input` to the worker that takes job `id` and takes its result into `outDir` (which must not exist yet).
   * `committed` resolves once a complete result is in place.
   */
  register(id: string, input: string, outDir: string): { token: string; committed: Promise<void> } {
    const token = newToken();
    let resolve!: () => void;
    const committed = new Promise<void>((r) => (resolve = r));
    this.entries.set(id, { token, input, outDir, done: false, resolve });
    return { token, committed };
  }

  /** Forgets a job (its routes answer 404 from now on). */
  unregister(id: string): void {
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Serves a request under /api/worker/; false when the path is not one of the exchange's. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '').split('?')[0]!;
    if (!path.startsWith('/api/worker/')) return false;
    try {
      await this.route(req, res, path);
    } catch (e) {
      const status = e instanceof ExchangeError ? e.status : 500;
      const message = e instanceof ExchangeError ? e.message : 'the exchange could not store the file';
      if (!res.headersSent) {
        const body = JSON.stringify({ error: message });
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
        res.end(body);
      } else res.destroy();
      req.resume();
    }
    return true;
  }

  private entryOf(req: IncomingMessage, id: string): Entry {
    const e = ID_PATTERN.test(id) ? this.entries.get(id) : undefined;
    const auth = /^Bearer ([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const ok = e !== undefined && auth.length === e.token.length && timingSafeEqual(Buffer.from(auth), Buffer.from(e.token));
    if (!ok) throw new ExchangeError(404, 'no such job on this exchange');
    return e;
  }

  private async route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const parts = path.split('/').slice(3); // ['jobs', ID, ...]
    if (parts[0] !== 'jobs' || parts.length < 3) throw new ExchangeError(404, 'no such route');
    const entry = this.entryOf(req, parts[1]!);
    if (parts.length === 3 && parts[2] === 'input' && req.method === 'GET') {
      const size = (await stat(entry.input)).size;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size });
      await pipeline(createReadStream(entry.input), res);
      return;
    }
    const [, , attempts, attempt, what, name] = parts;
    if (attempts !== 'attempts' || !attempt || !ATTEMPT_PATTERN.test(attempt)) throw new ExchangeError(404, 'no such route');
    const incoming = join(dirname(entry.outDir), `.${basename(entry.outDir)}.incoming-${attempt}`);
    if (what === 'files' && parts.length === 6 && req.method === 'PUT') {
      if (!(RESULT_NAMES as readonly string[]).includes(name!)) throw new ExchangeError(400, `${name} is not a result file`);
      if (entry.done) {
        await rm(incoming, { recursive: true, force: true });
        throw new ExchangeError(409, 'this job already has its result');
      }
      const length = Number(req.headers['content-length'] ?? NaN);
      if (!(length <= MAX_RESULT_FILE)) throw new ExchangeError(413, 'result files need a Content-Length up to 4 GiB');
      await mkdir(incoming, { recursive: true });
      const file = join(incoming, name!);
      await pipeline(req, createWriteStream(file));
      if ((await stat(file)).size !== length) throw new ExchangeError(400, `${name} arrived incomplete`);
      res.writeHead(204).end();
      return;
    }
    if (what === 'commit' && parts.length === 5 && req.method === 'POST') {
      req.resume();
      if (entry.done) {
        await rm(incoming, { recursive: true, force: true });
        throw new ExchangeError(409, 'this job already has its result');
      }
      const missing = REQUIRED_NAMES.filter((n) => !existsSync(join(incoming, n)));
      if (missing.length) throw new ExchangeError(400, `the result is incomplete: ${missing.join(', ')} missing`);
      entry.done = true;
      await mkdir(dirname(entry.outDir), { recursive: true });
      await rename(incoming, entry.outDir);
      // Attempts that died half-way (a killed worker) leave their folders: the result is in place, they can go.
      const prefix = `.${basename(entry.outDir)}.incoming-`;
      for (const n of await readdir(dirname(entry.outDir))) {
        if (n.startsWith(prefix)) await rm(join(dirname(entry.outDir), n), { recursive: true, force: true });
      }
      entry.resolve();
      res.writeHead(204).end();
      return;
    }
    throw new ExchangeError(404, 'no such route');
  }
}

export interface RunningExchange {
  exchange: FileExchange;
  /** Where workers reach it. */
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** An exchange on its own HTTP server (for `facelift infer --redis`, which has no web server). */
export async function startExchange(o: { host?: string; port?: number; advertise?: string } = {}): Promise<RunningExchange> {
  const exchange = new FileExchange();
  const server = createServer((req, res) => {
    void exchange.handle(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(o.port ?? 0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const url = o.advertise?.replace(/\/$/, '') ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    exchange, url, server,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
