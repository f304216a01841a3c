/**
 * A real redis-server (Debian's package) for tests: started on 127.0.0.1 at a free port with the append-only file
 * on (fsync on every write), stopped after; `restart()` stops it and starts it again on the same port and data.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';

export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server';

/** Why Redis tests must skip, or false. */
export const redisMissing: string | false = existsSync(REDIS_SERVER)
  ? false
  : `redis-server not found at ${REDIS_SERVER} (install Debian's redis-server package — scripts/setup-and-test.sh does)`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class TestRedis {
  private proc: ChildProcess | undefined;
  private constructor(readonly port: number, private readonly dir: string, private readonly password?: string) {}

  static async start(dir: string, opts: { password?: string } = {}): Promise<TestRedis> {
    mkdirSync(dir, { recursive: true });
    const r = new TestRedis(await freePort(), dir, opts.password);
    await r.up();
    return r;
  }

  get url(): string {
    return `redis://${this.password ? `:${this.password}@` : ''}127.0.0.1:${this.port}`;
  }

  private async up(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes',
      '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--loglevel', 'warning',
      ...(this.password ? ['--requirepass', this.password] : [])];
    const proc = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    this.proc = proc;
    const end = Date.now() + 15_000;
    for (;;) {
      const ping = spawnSync('redis-cli', ['-p', String(this.port), ...(this.password ? ['-a', this.password, '--no-auth-warning'] : []), 'ping'], { encoding: 'utf8' });
      if (ping.stdout?.trim() === 'PONG') return;
      if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode}`);
      if (Date.now() > end) throw new Error('redis-server did not answer within 15 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  async restart(downMs = 1000): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.up();
  }
}
