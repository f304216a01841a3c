/**
 * The model worker process: builds a JobRunner from a module named by the parent (its `createRunner(options,
 * onLoadProgress)`), then runs jobs on request, streaming progress over IPC. See child-runner.ts.
 */
import { pathToFileURL } from 'node:url';
import { UserError } from '../util/errors.ts';
import type { ChildMessage, ParentMessage, RunnerModule } from './child-runner.ts';
import type { JobRunner } from './runner.ts';
import { ensureViewerPly } from './viewer-file.ts';

let runner: JobRunner | undefined;

function send(m: ChildMessage): void {
  process.send?.(m);
}

function failure(e: unknown): { message: string; user: boolean } {
  const user = e instanceof UserError;
  if (!user) console.error((e as Error)?.stack ?? String(e));
  return { message: e instanceof Error ? e.message : String(e), user };
}

process.on('message', (m: ParentMessage) => {
  void (async () => {
    if (m.type === 'init') {
      try {
        const mod = (await import(pathToFileURL(m.module).href)) as RunnerModule;
        runner = mod.createRunner(m.options, (e) => send({ type: 'load-progress', event: e }));
        await runner.ready();
        const about = runner.about?.();
        send({ type: 'ready', ...(about ? { about } : {}) });
      } catch (e) {
        send({ type: 'init-failed', ...failure(e) });
      }
    } else if (m.type === 'run') {
      try {
        if (!runner) throw new Error('the worker got a job before its models were loaded');
        await runner.run(m.request, (event) => send({ type: 'progress', event }));
        // The viewer's copy of the Gaussians is made here too, so the server never spends its own event loop on
        // it (about a second per million Gaussians).
        await ensureViewerPly(m.request.outDir).catch((e: unknown) => console.error(`viewer.ply: ${(e as Error).message}`));
        send({ type: 'done' });
      } catch (e) {
        send({ type: 'failed', ...failure(e) });
      }
    } else if (m.type === 'close') {
      await runner?.close().catch(() => {});
      process.exit(0);
    }
  })();
});
// The parent went away: nothing left to work for.
process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal reaches the whole process group; the parent decides (it lets the running job finish).
process.on('SIGINT', () => {});
send({ type: 'started' });
