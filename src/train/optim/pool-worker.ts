/** An optimizer worker thread: holds views of the shared buffers it was sent and runs task lists on them. */
import { parentPort } from 'node:worker_threads';
import { runTask, type Task } from './tasks.ts';

type Message =
  { kind: 'buffers'; buffers: [number, Float32Array | Uint8Array][] } | { kind: 'run'; id: number; tasks: Task[] };

const buffers = new Map<number, Float32Array | Uint8Array>();
parentPort?.on('message', (m: Message) => {
  if (m.kind === 'buffers') {
    for (const [id, b] of m.buffers) buffers.set(id, b);
    return;
  }
  try {
    parentPort?.postMessage({ id: m.id, results: m.tasks.map((t) => runTask(t, buffers)) });
  } catch (e) {
    parentPort?.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
