import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A Hugging Face hub look-alike on 127.0.0.1 serving the routes the real hub serves to download clients:
 *   GET /api/models/{repo}/revision/{rev}            → {"id", "sha", "siblings"}
 *   GET /api/models/{repo}/tree/{sha}?recursive=true → file entries (paged with Link: rel="next")
 *   GET /{repo}/resolve/{rev}/{path}                 → bytes, with Range/206/Content-Range, ETag and
 *                                                      X-Repo-Commit; LFS files answer 302 to /cdn/{sha256}
 * Faults can be injected per path: cut the connection after N bytes (once), or serve corrupted bytes.
 */
export interface MockFile {
  path: string;
  data: Uint8Array;
  lfs?: boolean;
}

export interface RequestLog {
  method: string;
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

export class MockHub {
  readonly requests: RequestLog[] = [];
  /** path → bytes to send before dropping the connection (applies once, then cleared). */
  readonly cutAfter = new Map<string, number>();
  /** path → bytes to send before going silent without closing (applies once, then cleared). */
  readonly stallAfter = new Map<string, number>();
  /** Paths whose bytes are served with one byte flipped. */
  readonly corrupt = new Set<string>();
  /** Answer ranged requests with the whole file (200), as some proxies do. */
  ignoreRange = false;
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  requiredToken: string | null = null;
  /** Tree page size (to exercise pagination). */
  pageSize = 2;
  private server: Server;
  private files = new Map<string, MockFile>();
  url = '';

  constructor(readonly repo: string, files: MockFile[], readonly sha = 'a'.repeat(40)) {
    for (const f of files) this.files.set(f.path, f);
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  static gitOid(data: Uint8Array): string {
    return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
  }
  static sha256(data: Uint8Array): string {
    return createHash('sha256').update(data).digest('hex');
  }
  /** The etag a file gets (its cache blob name). */
  etag(path: string): string {
    const f = this.files.get(path)!;
    return f.lfs ? MockHub.sha256(f.data) : MockHub.gitOid(f.data);
  }

  private entry(f: MockFile) {
    if (!f.lfs) return { type: 'file', oid: MockHub.gitOid(f.data), size: f.data.length, path: f.path };
    const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${MockHub.sha256(f.data)}\nsize ${f.data.length}\n`;
    return {
      type: 'file', oid: MockHub.gitOid(Buffer.from(pointer)), size: f.data.length, path: f.path,
      lfs: { oid: MockHub.sha256(f.data), size: f.data.length, pointerSize: pointer.length },
    };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization });
    const u = new URL(req.url ?? '/', this.url);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (this.requiredToken && req.headers.authorization !== `Bearer ${this.requiredToken}` && !u.pathname.startsWith('/cdn/')) {
      return json(401, { error: 'Invalid credentials in Authorization header' });
    }
    const api = `/api/models/${this.repo}/`;
    if (u.pathname.startsWith(`${api}revision/`)) {
      const rev = decodeURIComponent(u.pathname.slice(`${api}revision/`.length));
      if (rev !== 'main' && rev !== this.sha) return json(404, { error: 'Invalid rev id' });
      return json(200, { id: this.repo, sha: this.sha, siblings: [...this.files.keys()].map((rfilename) => ({ rfilename })) });
    }
    if (u.pathname === `${api}tree/${this.sha}` && u.searchParams.get('recursive') === 'true') {
      const all = [...this.files.values()].map((f) => this.entry(f));
      const start = Number(u.searchParams.get('cursor') ?? 0);
      const page = all.slice(start, start + this.pageSize);
      const headers: Record<string, string> = {};
      if (start + this.pageSize < all.length) {
        headers.link = `<${this.url}${api}tree/${this.sha}?recursive=true&cursor=${start + this.pageSize}>; rel="next"`;
      }
      return json(200, page, headers);
    }
    const resolve = `/${this.repo}/resolve/`;
    if (u.pathname.startsWith(resolve)) {
      const [rev, ...rest] = u.pathname.slice(resolve.length).split('/');
      const path = rest.map(decodeURIComponent).join('/');
      const f = this.files.get(path);
      if ((rev !== 'main' && rev !== this.sha) || !f) return json(404, { error: 'Entry not found' });
      if (f.lfs) {
        res.writeHead(302, { location: `/cdn/${MockHub.sha256(f.data)}`, 'x-repo-commit': this.sha, 'x-linked-etag': `"${this.etag(path)}"`, 'x-linked-size': String(f.data.length) });
        return void res.end();
      }
      return this.sendBytes(req, res, f);
    }
    if (u.pathname.startsWith('/cdn/')) {
      const f = [...this.files.values()].find((x) => x.lfs && MockHub.sha256(x.data) === u.pathname.slice(5));
      if (!f) return json(404, { error: 'no such object' });
      return this.sendBytes(req, res, f);
    }
    json(404, { error: 'unknown route' });
  }

  private sendBytes(req: IncomingMessage, res: ServerResponse, f: MockFile): void {
    let data = Buffer.from(f.data);
    if (this.corrupt.has(f.path)) { data = Buffer.from(data); data[data.length >> 1] ^= 0xff; }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const headers: Record<string, string> = { etag: `"${this.etag(f.path)}"`, 'x-repo-commit': this.sha, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (m && !this.ignoreRange) {
      start = Number(m[1]);
      if (start >= data.length) { res.writeHead(416, headers); return void res.end(); }
      res.writeHead(206, { ...headers, 'content-length': String(data.length - start), 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
    } else {
      res.writeHead(200, { ...headers, 'content-length': String(data.length) });
    }
    const body = data.subarray(start);
    const cut = this.cutAfter.get(f.path);
    if (cut !== undefined && cut < body.length) {
      this.cutAfter.delete(f.path);
      res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    const stall = this.stallAfter.get(f.path);
    if (stall !== undefined && stall < body.length) {
      this.stallAfter.delete(f.path);
      res.write(body.subarray(0, stall));
      return;
    }
    res.end(body);
  }
}
