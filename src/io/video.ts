/**
 * Video through the ffmpeg command-line tool (research/prep-eval.md §3): raw RGBA frames are piped into
 * `ffmpeg … -c:v libx264 -pix_fmt yuv420p -movflags +faststart` (H.264 that browsers play), and decoding pipes
 * raw RGB out. The binary is `FFMPEG_PATH`, else the one shipped by @ffmpeg-installer/ffmpeg, else `ffmpeg` on PATH.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { UserError } from '../util/errors.ts';

/** The ffmpeg binary to run. */
export function ffmpegPath(): string {
  const env = process.env.FFMPEG_PATH;
  if (env) {
    if (!existsSync(env)) throw new UserError(`FFMPEG_PATH is set to ${env}, which does not exist`);
    return env;
  }
  try {
    const p = (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
    if (existsSync(p)) return p;
  } catch { /* optional dependency not installed: fall through */ }
  return 'ffmpeg';
}

function run(args: string[]): ChildProcessWithoutNullStreams {
  const bin = ffmpegPath();
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  return child;
}

/** Collects a child's stderr (last 4 kB) and resolves on exit 0, rejects with that stderr otherwise. */
function finished(child: ChildProcessWithoutNullStreams, what: string): Promise<string> {
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-64_000); });
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new UserError(`${what}: cannot run ffmpeg (${e.message}); install ffmpeg or set FFMPEG_PATH`)));
    child.on('close', (code) => (code === 0 ? resolve(err) : reject(new UserError(`${what}: ffmpeg exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`))));
  });
}

export interface Mp4Options {
  width: number;
  height: number;
  fps?: number;
  /** x264 constant rate factor; 18 is visually lossless. */
  crf?: number;
  preset?: string;
}

/** An H.264/yuv420p MP4 being written frame by frame. */
export class Mp4Writer {
  private done: Promise<string>;
  private failed: unknown = null;
  private frames = 0;

  private constructor(private child: ChildProcessWithoutNullStreams, readonly path: string, readonly width: number, readonly height: number) {
    this.done = finished(child, `encoding ${path}`);
    this.done.catch((e: unknown) => { this.failed = e; });
    child.stdin.on('error', () => { /* reported through `done` */ });
  }

  static open(path: string, opts: Mp4Options): Mp4Writer {
    const { width, height } = opts;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new RangeError(`video size must be positive integers, got ${width}×${height}`);
    const fps = opts.fps ?? 30;
    const args = ['-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0',
      // yuv420p needs even sizes: pad odd ones by a row/column.
      '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2',
      '-c:v', 'libx264', '-preset', opts.preset ?? 'veryfast', '-crf', String(opts.crf ?? 18),
      '-pix_fmt', 'yuv420p', '-movflags', '+faststart', path];
    return new Mp4Writer(run(args), path, width, height);
  }

  /** Appends one RGBA frame (width·height·4 bytes); resolves when ffmpeg has taken it (back-pressure). */
  async write(rgba: Uint8Array): Promise<void> {
    if (this.failed) throw this.failed;
    if (rgba.length !== this.width * this.height * 4) throw new RangeError(`frame has ${rgba.length} bytes, expected ${this.width}·${this.height}·4 (RGBA)`);
    this.frames++;
    const ok = this.child.stdin.write(rgba);
    if (!ok) {
      await Promise.race([
        new Promise<void>((r) => this.child.stdin.once('drain', () => r())),
        this.done.then(() => undefined, () => undefined),
      ]);
    }
    if (this.failed) throw this.failed;
  }

  /** Ends the stream and waits for ffmpeg to finish the file. */
  async close(): Promise<{ frames: number }> {
    this.child.stdin.end();
    await this.done;
    return { frames: this.frames };
  }

  /** Stops ffmpeg without finishing (the file is left incomplete). */
  abort(): void {
    this.child.kill('SIGKILL');
  }
}

export interface VideoInfo {
  width: number;
  height: number;
  frames: number;
  codec: string;
  pixFmt: string;
  fps: number;
}

/** Decodes a video completely with ffmpeg and reports its size, frame count, codec, pixel format and rate. */
export async function probeVideo(path: string): Promise<VideoInfo> {
  if (!existsSync(path)) throw new UserError(`no such video: ${path}`);
  const child = run(['-hide_banner', '-nostats', '-i', path, '-map', '0:v:0', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1']);
  let bytes = 0;
  child.stdout.on('data', (d: Buffer) => { bytes += d.length; });
  const log = await finished(child, `reading ${path}`);
  const m = /Stream #\S+.*Video: (\w+)[^,]*, (\w+)[^,]*, (\d+)x(\d+)/.exec(log);
  if (!m) throw new UserError(`${path}: ffmpeg found no video stream`);
  const fps = Number(/([\d.]+) fps/.exec(log)?.[1] ?? NaN);
  const width = Number(m[3]), height = Number(m[4]);
  return { codec: m[1], pixFmt: m[2], width, height, frames: bytes / (width * height), fps };
}

/** Decodes every `every`-th frame of a video to RGB24 (width·height·3 bytes per frame). */
export async function decodeFrames(path: string, opts: { every?: number } = {}): Promise<{ width: number; height: number; frames: Uint8Array[] }> {
  const info = await probeVideo(path);
  const every = opts.every ?? 1;
  const args = ['-hide_banner', '-loglevel', 'error', '-i', path, '-map', '0:v:0'];
  if (every > 1) args.push('-vf', `select=not(mod(n\\,${every}))`, '-vsync', 'vfr');
  args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  const child = run(args);
  const chunks: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  await finished(child, `decoding ${path}`);
  const all = Buffer.concat(chunks);
  const size = info.width * info.height * 3;
  const frames: Uint8Array[] = [];
  for (let o = 0; o + size <= all.length; o += size) frames.push(new Uint8Array(all.buffer, all.byteOffset + o, size));
  return { width: info.width, height: info.height, frames };
}

/**
 * A video's frames one at a time, in order, from one decoding pass (no seeking, so no keyframe-seek inaccuracy:
 * frame i is the i-th frame the decoder outputs, B-frames included; `-vsync 0` neither drops nor duplicates).
 * Holds at most a few frames in memory; `every` keeps frames 0, every, 2·every, … (numbered in the full stream).
 */
export class FrameStream {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly done: Promise<string>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private wake: (() => void) | null = null;
  private failure: unknown = null;
  /** Index (in the full stream) of the next frame `next()` returns. */
  index = 0;

  constructor(readonly path: string, readonly width: number, readonly height: number, readonly pixFmt: 'rgb24' | 'gray', private readonly every = 1) {
    const args = ['-hide_banner', '-loglevel', 'error', '-i', path, '-map', '0:v:0', '-vsync', '0'];
    if (every > 1) args.push('-vf', `select=not(mod(n\\,${every}))`);
    args.push('-f', 'rawvideo', '-pix_fmt', pixFmt, 'pipe:1');
    this.child = run(args);
    this.done = finished(this.child, `decoding ${path}`);
    this.done.then(() => { this.ended = true; this.wake?.(); }, (e: unknown) => { this.failure = e; this.ended = true; this.wake?.(); });
    this.child.stdout.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      if (this.buffered >= 3 * this.frameBytes) this.child.stdout.pause();
      this.wake?.();
    });
    this.child.stdout.on('end', () => { this.wake?.(); });
  }

  static async open(path: string, pixFmt: 'rgb24' | 'gray' = 'rgb24', every = 1): Promise<FrameStream> {
    const info = await probeVideo(path);
    return new FrameStream(path, info.width, info.height, pixFmt, every);
  }

  get frameBytes(): number {
    return this.width * this.height * (this.pixFmt === 'gray' ? 1 : 3);
  }

  /** The next frame, or null at the end of the video. */
  async next(): Promise<Uint8Array | null> {
    const n = this.frameBytes;
    while (this.buffered < n) {
      if (this.failure) throw this.failure;
      if (this.ended && this.child.stdout.readableEnded) {
        if (this.buffered > 0) throw new UserError(`${this.path}: the video ends in the middle of a frame`);
        return null;
      }
      this.child.stdout.resume();
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = null;
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const frame = new Uint8Array(all.subarray(0, n));
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    if (this.buffered < 3 * n) this.child.stdout.resume();
    this.index += this.every;
    return frame;
  }

  close(): void {
    if (!this.ended) this.child.kill('SIGKILL');
  }
}
