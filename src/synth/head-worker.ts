/**
 * Worker-thread entry of HeadPool: generates heads on request. Messages: {id, seed, spacing} → {id, head} (the
 * Gaussian arrays are transferred, not copied) or {id, error}.
 */
import { parentPort } from 'node:worker_threads';
import { generateHead } from './head.ts';
import { sampleHeadParams } from './params.ts';

if (!parentPort) throw new Error('head-worker.ts must run as a worker thread');
const port = parentPort;

port.on('message', (msg: { id: number; seed: number; spacing?: number }) => {
  try {
    const head = generateHead(sampleHeadParams(msg.seed), { spacing: msg.spacing });
    const g = head.gaussians;
    port.postMessage({ id: msg.id, head }, [g.means.buffer, g.scales.buffer, g.rotations.buffer, g.opacities.buffer, g.sh.buffer] as ArrayBuffer[]);
  } catch (err) {
    port.postMessage({ id: msg.id, error: err instanceof Error ? err.stack ?? err.message : String(err) });
  }
});
