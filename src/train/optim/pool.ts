/**
 * Worker threads for the optimizer's loops. Buffers backed by SharedArrayBuffer are sent to every worker once and
 * then updated in place by whichever thread gets a task on them; tasks on ordinary buffers run on the main
 * thread. The main thread always takes a share of the tasks too, so `workers` extra threads give workers + 1.
 * Threads take the next task from a shared counter rather than a fixed share, so a thread slowed by a busy core (or
 * a hyperthread sibling) takes fewer tasks instead of holding the others up. Each task's result lands in its own
 * slot, so what a run returns does not depend on which thread ran what.
 */
import { Worker } from 'node:worker_threads';
import { drain, runTask, type Queue, type Task } from './tasks.ts';

type Buf = Float32Array | Uint8Array;

interface Pending {
  resolve: (r: number[]) => void;
  reject: (e: Error) => void;
}

export class LoopPool {
  private readonly ids = new WeakMap<Buf, number>();
  private readonly buffers = new Map<number, Buf>();
  private readonly unsent: [number, Buf][] = [];
  private nextId = 1;
  private nextRun = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly workers: Worker[];

  constructor(workers: number) {
    this.workers = Array.from({ length: Math.max(0, workers) }, () => {
      const w = new Worker(new URL('./pool-worker-boot.mjs', import.meta.url));
      w.on('message', (m: { id: number; results?: number[]; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error !== undefined || !m.results) p.reject(new Error(`optimizer worker: ${m.error ?? 'no result'}`));
        else p.resolve(m.results);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      w.unref();
      return w;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  /** The id tasks use for `a`, registering it on first sight. */
  id(a: Buf): number {
    let id = this.ids.get(a);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(a, id);
      this.buffers.set(id, a);
      if (a.buffer instanceof SharedArrayBuffer) this.unsent.push([id, a]);
    }
    return id;
  }

  private shared(t: Task): boolean {
    const ids = t.op === 'fp32' ? [t.p, t.g, t.m, t.v] : t.op === '8bit' ? [t.p, t.g, t.q1, t.a1, t.q2, t.a2] : [t.g];
    return ids.every((i) => this.buffers.get(i)?.buffer instanceof SharedArrayBuffer);
  }

  /** Runs the tasks (any order, in parallel where the buffers allow) and returns their results in task order. */
  async run(tasks: readonly Task[]): Promise<number[]> {
    const spread = this.workers.length ? tasks.map((_, i) => i).filter((i) => this.shared(tasks[i]!)) : [];
    const inSpread = new Set(spread);
    const results = new Array<number>(tasks.length).fill(0);
    if (this.unsent.length && this.workers.length) {
      const buffers = this.unsent.splice(0);
      for (const w of this.workers) w.postMessage({ kind: 'buffers', buffers });
    }
    const queue: Queue = {
      tasks: spread.map((i) => tasks[i]!),
      next: new Int32Array(new SharedArrayBuffer(4)),
      results: new Float64Array(new SharedArrayBuffer(8 * Math.max(1, spread.length))),
    };
    const remote = spread.length
      ? this.workers.map((worker) => {
          const id = this.nextRun++;
          worker.ref();
          return new Promise<number[]>((resolve, reject) => {
            this.pending.set(id, { resolve, reject });
            worker.postMessage({ kind: 'run', id, queue });
          }).finally(() => worker.unref());
        })
      : [];
    // Tasks only this thread can run first, then a share of the queue; even after an error here the queue is
    // drained and the workers awaited, so none is left updating a buffer after this returns.
    let failed: unknown;
    try {
      tasks.forEach((t, i) => {
        if (!inSpread.has(i)) results[i] = runTask(t, this.buffers);
      });
    } catch (e) {
      failed = e;
    }
    drain(queue, this.buffers);
    const settled = await Promise.allSettled(remote);
    if (failed !== undefined) throw failed;
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    spread.forEach((i, k) => (results[i] = queue.results[k]!));
    return results;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A Float32Array the pool's workers can update in place. */
export function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}

/** The same values in shared buffers (once, before sessions and optimizers take views of them). */
export function shareAll(m: Map<string, Float32Array>): void {
  for (const [k, v] of m) {
    if (v.buffer instanceof SharedArrayBuffer) continue;
    const s = sharedFloat32(v.length);
    s.set(v);
    m.set(k, s);
  }
}
