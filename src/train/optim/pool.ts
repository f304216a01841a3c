/**
 * Worker threads for the optimizer's loops. Buffers backed by SharedArrayBuffer are sent to every worker once and
 * then updated in place by whichever thread gets a task on them; tasks on ordinary buffers run on the main
 * thread. The main thread always takes a share of the tasks too, so `workers` extra threads give workers + 1.
 */
import { Worker } from 'node:worker_threads';
import { runTask, type Task } from './tasks.ts';

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
    const results = new Array<number>(tasks.length).fill(0);
    const spread = this.workers.length ? tasks.map((_, i) => i).filter((i) => this.shared(tasks[i]!)) : [];
    const local = new Set(tasks.map((_, i) => i));
    if (this.unsent.length && this.workers.length) {
      const buffers = this.unsent.splice(0);
      for (const w of this.workers) w.postMessage({ kind: 'buffers', buffers });
    }
    // Contiguous groups of about equal size: group 0 stays on the main thread.
    const size = (i: number) => tasks[i]!.to - tasks[i]!.from;
    const total = spread.reduce((n, i) => n + size(i), 0);
    const groups: number[][] = Array.from({ length: this.workers.length + 1 }, () => []);
    let acc = 0;
    for (const i of spread) {
      const gi = Math.min(groups.length - 1, Math.floor((acc / Math.max(1, total)) * groups.length));
      groups[gi]!.push(i);
      acc += size(i);
    }
    const remote = groups.slice(1).map((idx, w) => {
      for (const i of idx) local.delete(i);
      if (!idx.length) return Promise.resolve();
      const id = this.nextRun++;
      const worker = this.workers[w]!;
      worker.ref();
      return new Promise<number[]>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        worker.postMessage({ kind: 'run', id, tasks: idx.map((i) => tasks[i]) });
      })
        .then((r) => idx.forEach((i, k) => (results[i] = r[k]!)))
        .finally(() => worker.unref());
    });
    for (const i of local) results[i] = runTask(tasks[i]!, this.buffers);
    await Promise.all(remote);
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
