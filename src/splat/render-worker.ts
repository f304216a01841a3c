/**
 * Worker-thread entry of SplatRenderer: holds the scene (shared memory, set once) and runs rasterizer jobs
 * (parallel.ts) on request. Messages: {scene} → 'ok'; {id, job} → {id, result} or {id, error}.
 */
import { parentPort } from 'node:worker_threads';
import { runJob, type Job, type SceneData } from './parallel.ts';

if (!parentPort) throw new Error('render-worker.ts must run as a worker thread');
const port = parentPort;
let scene: SceneData | null = null;

port.on('message', (msg: { scene?: SceneData; id?: number; job?: Job }) => {
  if (msg.scene) {
    scene = msg.scene;
    port.postMessage({ id: msg.id, result: {} });
    return;
  }
  try {
    if (!scene) throw new Error('no scene set');
    const result = runJob(scene, msg.job as Job);
    // A frame's planes are this thread's own buffers: hand them over instead of copying.
    const transfer = result.image ? Object.values(result.image).filter(ArrayBuffer.isView).map((a) => a.buffer as ArrayBuffer) : [];
    port.postMessage({ id: msg.id, result }, transfer);
  } catch (err) {
    port.postMessage({ id: msg.id, error: err instanceof Error ? err.stack ?? err.message : String(err) });
  }
});
