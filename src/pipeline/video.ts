/**
 * MP4 (H.264) writer over the ffmpeg binary: raw RGB frames go to ffmpeg's stdin. Browser-playable by design
 * (design.md §5): yuv420p, high profile, `+faststart`. The reference writes lossless yuv444p/high444, which some
 * browsers do not play (spec pipeline.md §7). src/io has no video module yet, so the pipeline carries this one.
 * The binary: $FFMPEG_PATH, else the one shipped by @ffmpeg-installer (a separate process, never linked).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { UserError } from '../util/errors.ts';

export function ffmpegPath(): string {
  if (process.env.FFMPEG_PATH) return process.env.FFMPEG_PATH;
  try {
    return (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch (e) {
    throw new UserError(`no ffmpeg binary: @ffmpeg-installer/ffmpeg is not usable on this platform (${(e as Error).message.split('\n')[0]}); set FFMPEG_PATH to an ffmpeg with libx264`);
  }
}

export interface VideoWriter {
  /** One frame, RGB interleaved uint8, width·height·3 bytes. Resolves when ffmpeg has taken it (back-pressure). */
  write(rgb: Uint8Array): Promise<void>;
  /** Closes the stream and waits for ffmpeg; rejects with ffmpeg's last error lines if it failed. */
  finish(): Promise<void>;
  /** Kills ffmpeg (after an error elsewhere). */
  abort(): void;
}

export interface VideoOptions {
  width: number;
  height: number;
  fps: number;
  /** x264 constant rate factor (default 16: visually lossless). */
  crf?: number;
}

export function openMp4Writer(path: string, o: VideoOptions): VideoWriter {
  if (o.width % 2 || o.height % 2) throw new RangeError(`yuv420p video needs even dimensions, got ${o.width}×${o.height}`);
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${o.width}x${o.height}`, '-r', String(o.fps), '-i', 'pipe:0',
    '-an', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', String(o.crf ?? 16), '-profile:v', 'high',
    '-pix_fmt', 'yuv420p', '-r', String(o.fps), '-movflags', '+faststart', '-f', 'mp4', path,
  ];
  const child = spawn(ffmpegPath(), args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  let spawnError: Error | undefined;
  const exited = new Promise<number | null>((res) => {
    child.on('error', (e) => { spawnError = e; res(null); });
    child.on('close', (code) => res(code));
  });
  child.stdin.on('error', () => { /* reported through the exit code */ });
  const frameBytes = o.width * o.height * 3;
  const fail = (code: number | null) => new Error(spawnError
    ? `cannot run ffmpeg (${spawnError.message}); set FFMPEG_PATH`
    : `ffmpeg failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return {
    write(rgb) {
      if (rgb.length !== frameBytes) return Promise.reject(new RangeError(`frame has ${rgb.length} bytes, expected ${frameBytes}`));
      if (spawnError || child.exitCode !== null) return exited.then((c) => { throw fail(c); });
      return new Promise<void>((res, rej) => {
        if (child.stdin.write(rgb)) res();
        else {
          const onDrain = () => { child.off('close', onClose); res(); };
          const onClose = (c: number | null) => { child.stdin.off('drain', onDrain); rej(fail(c)); };
          child.stdin.once('drain', onDrain);
          child.once('close', onClose);
        }
      });
    },
    async finish() {
      child.stdin.end();
      const code = await exited;
      if (code !== 0) throw fail(code);
    },
    abort() {
      child.kill('SIGKILL');
    },
  };
}

/** ffmpeg's version line (for result.json), or undefined if it cannot be run. */
export async function ffmpegVersion(): Promise<string | undefined> {
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
