// Plain-JS entry for head-worker.ts: registers tsx's loader in this worker thread, then loads the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./head-worker.ts');
