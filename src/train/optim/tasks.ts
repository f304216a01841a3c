/** The optimizer's loop tasks: what the main thread and the pool's workers run on slices of shared buffers. */
import { adamw8bit, adamwFp32, cleanAndSumSquares, type AdamWCoeffs } from './kernels.ts';

export type Buffers = ReadonlyMap<number, Float32Array | Uint8Array>;

export type Task =
  | { op: 'sumsq'; g: number; from: number; to: number }
  | { op: 'zero'; g: number; from: number; to: number }
  | { op: 'fp32'; p: number; g: number; m: number; v: number; from: number; to: number; c: AdamWCoeffs }
  | {
      op: '8bit';
      p: number;
      g: number;
      q1: number;
      a1: number;
      q2: number;
      a2: number;
      from: number;
      to: number;
      c: AdamWCoeffs;
    };

const f32 = (b: Buffers, id: number): Float32Array => b.get(id) as Float32Array;
const u8 = (b: Buffers, id: number): Uint8Array => b.get(id) as Uint8Array;

/** Runs one task; `sumsq` returns its sum of squares, the others 0. */
export function runTask(t: Task, b: Buffers): number {
  switch (t.op) {
    case 'sumsq':
      return cleanAndSumSquares(f32(b, t.g), t.from, t.to);
    case 'zero':
      f32(b, t.g).fill(0, t.from, t.to);
      return 0;
    case 'fp32':
      adamwFp32(f32(b, t.p), f32(b, t.g), f32(b, t.m), f32(b, t.v), t.from, t.to, t.c);
      return 0;
    case '8bit':
      adamw8bit(f32(b, t.p), f32(b, t.g), u8(b, t.q1), f32(b, t.a1), u8(b, t.q2), f32(b, t.a2), t.from, t.to, t.c);
      return 0;
  }
}

/** Tasks shared by all threads: each takes the index `next` holds and adds one, until none are left. */
export interface Queue {
  tasks: readonly Task[];
  next: Int32Array;
  results: Float64Array;
}

/** Runs queued tasks until the queue is empty. */
export function drain(q: Queue, buffers: Buffers): void {
  for (let k = Atomics.add(q.next, 0, 1); k < q.tasks.length; k = Atomics.add(q.next, 0, 1)) {
    q.results[k] = runTask(q.tasks[k]!, buffers);
  }
}
