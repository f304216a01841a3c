/** An optimizer worker thread: holds views of the shared buffers it was sent and runs task lists on them. */
import { parentPort } from 'node:worker_threads';
import { drain, type Queue } from './tasks.ts';

type Message =
  { kind: 'buffers'; buffers: [number, Float32Array | Uint8Array][] } | { kind: 'run'; id: number; queue: Queue };

const buffers = new Map<number, Float32Array | Uint8Array>();
parentPort?.on('message', (m: Message) => {
  if (m.kind === 'buffers') {
    for (const [id, b] of m.buffers) buffers.set(id, b);
    return;
  }
  try {
    drain(m.queue, buffers);
    parentPort?.postMessage({ id: m.id, results: [] });
  } catch (e) {
    parentPort?.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
