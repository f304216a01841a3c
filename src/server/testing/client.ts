/** Small HTTP client helpers for the server's tests: form submission, SSE reading, raw requests. */
import { request } from 'node:http';
import sharp from 'sharp';
import type { JobView } from '../jobs.ts';

/** A 160×200 PNG portrait-ish test photo (a pale oval on a blue background). */
export async function testPhoto(format: 'png' | 'jpeg' = 'png', width = 160, height = 200): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="100%" height="100%" fill="#3a6ea5"/>
    <ellipse cx="${width / 2}" cy="${height * 0.45}" rx="${width * 0.28}" ry="${height * 0.3}" fill="#e0b49a"/></svg>`;
  const img = sharp(Buffer.from(svg));
  return format === 'png' ? img.png().toBuffer() : img.jpeg().toBuffer();
}

export function form(image: Uint8Array | undefined, fields: Record<string, string> = {}, filename = 'photo.png', fieldName = 'image'): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  if (image) f.append(fieldName, new Blob([image]), filename);
  return f;
}

export async function submit(base: string, body: FormData): Promise<{ status: number; json: JobView & { error?: string } }> {
  const res = await fetch(`${base}/api/jobs`, { method: 'POST', body });
  return { status: res.status, json: (await res.json()) as JobView & { error?: string } };
}

/** Reads `/api/jobs/ID/events` until the server ends the stream; returns every `job` event's JobView. */
export async function collectEvents(base: string, id: string, timeoutMs = 60_000): Promise<JobView[]> {
  const res = await fetch(`${base}/api/jobs/${id}/events`, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`events: HTTP ${res.status} ${await res.text()}`);
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) throw new Error('events: not an event stream');
  const out: JobView[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const lines = block.split('\n');
      if (lines.some((l) => l === 'event: job')) {
        out.push(JSON.parse(lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')) as JobView);
      }
    }
  }
  return out;
}

/** A GET with the path sent exactly as given (fetch would normalise `..`). */
export function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}
