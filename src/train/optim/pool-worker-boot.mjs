// Plain-JS entry for pool-worker.ts: registers tsx's loader in this worker thread, then loads the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./pool-worker.ts');
