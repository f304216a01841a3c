/** Versions recorded in result.json: this package, Node, and the native pieces that shape the numbers. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { ffmpegPath } from '../io/video.ts';

const require = createRequire(import.meta.url);

function packageVersion(name: string): string | undefined {
  try {
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 6; i++) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version;
      } catch { /* keep walking up */ }
      dir = dirname(dir);
    }
  } catch { /* not installed */ }
  return undefined;
}

let cached: Promise<Record<string, string>> | undefined;

export function softwareVersions(): Promise<Record<string, string>> {
  cached ??= (async () => {
    const self = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const out: Record<string, string> = { 'facelift-ts': self.version, node: process.version };
    for (const p of ['onnxruntime-node', 'sharp', '@vladmandic/face-api', '@tensorflow/tfjs']) {
      const v = packageVersion(p);
      if (v) out[p] = v;
    }
    const ff = await ffmpegVersion();
    if (ff) out.ffmpeg = ff;
    return out;
  })();
  return cached;
}

/** ffmpeg's version line, or undefined if it cannot be run. */
async function ffmpegVersion(): Promise<string | undefined> {
  try {
    const child = spawn(ffmpegPath(), ['-version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const code = await new Promise<number | null>((res) => { child.on('error', () => res(null)); child.on('close', res); });
    return code === 0 ? out.split('\n')[0]?.trim() : undefined;
  } catch {
    return undefined;
  }
}
