// Plain-JS entry for render-worker.ts: registers tsx's loader in this worker thread, then loads the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./render-worker.ts');
