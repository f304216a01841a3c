// Entry of the model worker process (child-runner.ts): a plain-JS file that registers tsx's loader, since
// execArgv does not carry it reliably, then runs the TypeScript host.
import { register } from 'tsx/esm/api';
register();
await import('./runner-host.ts');
