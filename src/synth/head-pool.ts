/**
 * Head generation off the main thread, so that the next head is built while the current one renders
 * (`writeHeadDataset` asks for head i+1 before rendering head i). With `threads: 0` heads are generated on the
 * calling thread, on demand. Either way the heads are identical: generation is a pure function of the seed.
 */
import { Worker } from 'node:worker_threads';
import { generateHead, type Head } from './head.ts';
import { sampleHeadParams } from './params.ts';

interface Pending { resolve: (h: Head) => void; reject: (e: Error) => void }

export class HeadPool {
  private readonly worker: Worker | null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(opts: { threads?: 0 | 1 } = {}) {
    this.worker = (opts.threads ?? 1) === 0 ? null : new Worker(new URL('./head-worker-boot.mjs', import.meta.url));
    if (!this.worker) return;
    this.worker.on('message', (m: { id: number; head?: Head; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker?.unref();
      if (m.error !== undefined || !m.head) p.reject(new Error(`head worker: ${m.error ?? 'no head returned'}`));
      else p.resolve(m.head);
    });
    this.worker.on('error', (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
    this.worker.unref();
  }

  /** The head for `seed` (see sampleHeadParams / generateHead). */
  generate(seed: number, spacing?: number): Promise<Head> {
    if (!this.worker) {
      try {
        return Promise.resolve(generateHead(sampleHeadParams(seed), { spacing }));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const id = this.nextId++;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise<Head>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker!.postMessage({ id, seed, spacing });
    });
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}
