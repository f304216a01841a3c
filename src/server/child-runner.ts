/**
 * A JobRunner whose models live in a separate Node process. The server's event loop then never waits on the
 * pipeline's synchronous parts (filters, PLY encoding), and a crash of the model process (out of memory, a native
 * fault) fails only the running job: the next job starts a fresh process and reloads the models.
 *
 * The child imports `module` and calls its `createRunner(options, onLoadProgress)`; `options` must survive JSON.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { UserError } from '../util/errors.ts';
import type { PlannedStage } from '../pipeline/estimate.ts';
import type { JobRunner, RunnerAbout, RunRequest, StageEvent } from './runner.ts';
import type { JobSettings } from './settings.ts';

/** What a runner module exports for the child process. */
export interface RunnerModule {
  createRunner(options: unknown, onLoadProgress: (e: StageEvent) => void): JobRunner;
}

export type ParentMessage =
  | { type: 'init'; module: string; options: unknown }
  | { type: 'run'; request: RunRequest }
  | { type: 'close' };

export type ChildMessage =
  | { type: 'started' }
  | { type: 'ready'; about?: RunnerAbout }
  | { type: 'init-failed'; message: string; user: boolean }
  | { type: 'load-progress'; event: StageEvent }
  | { type: 'progress'; event: StageEvent }
  | { type: 'done' }
  | { type: 'failed'; message: string; user: boolean };

export interface ChildRunnerOptions {
  /** Path of the runner module (e.g. pipeline-runner.ts). */
  module: string;
  /** JSON-serialisable options for its createRunner. */
  options: unknown;
  /** The stages its runner reports (known before the child starts). */
  stages: readonly string[];
  /** Its runner's plan (JobRunner.plan), computed in this process. */
  plan?: (settings: JobSettings) => PlannedStage[];
  onLoadProgress?: (e: StageEvent) => void;
  /** Extra Node flags for the child (e.g. --max-old-space-size=…). */
  execArgv?: string[];
}

const ENTRY = new URL('./runner-child.mjs', import.meta.url).pathname;

function errorOf(m: { message: string; user: boolean }): Error {
  return m.user ? new UserError(m.message) : new Error(m.message);
}

function exitReason(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal === 'SIGKILL') return 'it was killed (SIGKILL — often the system running out of memory)';
  if (signal) return `it was stopped by ${signal}`;
  return `it exited with code ${code}`;
}

export class ChildRunner implements JobRunner {
  readonly stages: readonly string[];
  readonly plan?: (settings: JobSettings) => PlannedStage[];
  private child: ChildProcess | undefined;
  private loading: Promise<void> | undefined;
  /** Called with the child's messages while a job runs. */
  private onMessage: ((m: ChildMessage) => void) | undefined;
  private onExit: ((why: string) => void) | undefined;
  private closing = false;
  private lastLoad: StageEvent | undefined;
  private loadedAbout: RunnerAbout | undefined;

  constructor(private readonly opts: ChildRunnerOptions) {
    this.stages = opts.stages;
    if (opts.plan) this.plan = opts.plan;
  }

  ready(): Promise<void> {
    this.loading ??= this.start();
    return this.loading;
  }

  loadProgress(): StageEvent | undefined {
    return this.lastLoad;
  }

  about(): RunnerAbout | undefined {
    return this.loadedAbout;
  }

  private start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const child = fork(ENTRY, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: this.opts.execArgv ?? [], serialization: 'advanced' });
      this.child = child;
      let loaded = false;
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'started') child.send({ type: 'init', module: this.opts.module, options: this.opts.options } satisfies ParentMessage);
        else if (m.type === 'load-progress') {
          this.lastLoad = m.event;
          this.opts.onLoadProgress?.(m.event);
        }
        else if (m.type === 'ready') {
          loaded = true;
          this.loadedAbout = m.about;
          resolve();
        }
        else if (m.type === 'init-failed') {
          reject(errorOf(m));
          child.kill();
        }
        else this.onMessage?.(m);
      });
      child.on('error', (e) => { if (!loaded) reject(e); });
      child.on('exit', (code, signal) => {
        const why = exitReason(code, signal);
        if (this.child === child) {
          // Next job: a fresh process (and a fresh attempt at loading the models).
          this.child = undefined;
          this.loading = undefined;
        }
        if (!loaded) reject(new Error(`the model worker process stopped while loading the models: ${why}`)); // no-op after init-failed
        else if (!this.closing) this.onExit?.(why);
      });
    });
  }

  async run(req: RunRequest, onProgress: (e: StageEvent) => void): Promise<void> {
    await this.ready();
    const child = this.child!;
    try {
      await new Promise<void>((resolve, reject) => {
        this.onMessage = (m) => {
          if (m.type === 'progress') onProgress(m.event);
          else if (m.type === 'done') resolve();
          else if (m.type === 'failed') reject(errorOf(m));
        };
        this.onExit = (why) => reject(new Error(`the model worker process stopped during the job: ${why}; it is restarted for the next job`));
        child.send({ type: 'run', request: req } satisfies ParentMessage);
      });
    } finally {
      this.onMessage = undefined;
      this.onExit = undefined;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.send({ type: 'close' } satisfies ParentMessage);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
