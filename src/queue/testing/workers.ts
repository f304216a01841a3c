/** `facelift worker` processes and small portrait folders, for the queue's tests and its benchmark. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const BIN = new URL('../../../bin/facelift.js', import.meta.url).pathname;

export interface WorkerProc {
  proc: ChildProcess;
  /** Its stderr lines so far. */
  log: string[];
  /** Resolves when it says "worker ready"; rejects if it exits first. */
  ready: Promise<void>;
}

/** A `facelift worker` process on `weights` (no matting, one onnxruntime thread). */
export function spawnWorker(
  url: string,
  o: { weights: string; name: string; env: NodeJS.ProcessEnv; workDir: string; extra?: string[] },
): WorkerProc {
  const args = [BIN, 'worker', '--redis', url, '--weights', o.weights, '--matting', 'none', '--threads', '1',
    '--work-dir', o.workDir, ...(o.extra ?? [])];
  const proc = spawn(process.execPath, args, { env: o.env, stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      log.push(...d.split('\n').filter(Boolean));
      if (/worker ready/.test(d)) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`worker ${o.name} exited (${code}): ${log.join('\n')}`)));
  });
  ready.catch(() => {});
  return { proc, log, ready };
}

export async function stopWorkers(ws: WorkerProc[]): Promise<void> {
  await Promise.all(ws.map(async (w) => {
    if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
    const exited = new Promise((r) => w.proc.once('exit', r));
    w.proc.kill('SIGKILL');
    await exited;
  }));
}

/** `n` small portraits (a coloured head-shaped blob each, 64²) in `dir`: p00.png, p01.png, … */
export async function portraits(dir: string, n: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (let k = 0; k < n; k++) {
    const rgb = Buffer.alloc(64 * 64 * 3);
    for (let i = 0; i < 64 * 64; i++) {
      const x = i % 64, y = Math.floor(i / 64);
      const inside = ((x - 32) / 18) ** 2 + ((y - 30) / 24) ** 2 < 1;
      rgb.set(inside ? [(40 * k) % 256, 120 + k, 200 - 5 * k] : [250, 250, 250], 3 * i);
    }
    await sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(join(dir, `p${String(k).padStart(2, '0')}.png`));
  }
}
