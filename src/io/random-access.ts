import { open, type FileHandle } from 'node:fs/promises';
import { UserError, fsReason } from '../util/errors.ts';

/** Largest single read we issue: fs reads are limited to 2 GiB − 1 bytes per call. */
const MAX_READ = 1 << 30;

/**
 * A file opened for positional reads, so tensors can be read one at a time from files of any size
 * (offsets are plain numbers: exact up to 2^53 bytes).
 */
export class RandomAccessFile {
  private constructor(readonly path: string, private fh: FileHandle, readonly size: number) {}

  static async open(path: string): Promise<RandomAccessFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw new UserError(`cannot open ${path}: ${fsReason(err)}`, { cause: err });
    }
    const st = await fh.stat();
    return new RandomAccessFile(path, fh, st.size);
  }

  /** Reads exactly `length` bytes at `position` into a fresh, 8-byte-aligned buffer. */
  async read(position: number, length: number, what = 'data'): Promise<Uint8Array> {
    if (position < 0 || length < 0 || position + length > this.size) {
      throw new UserError(
        `${this.path}: ${what} lies at bytes ${position}..${position + length} but the file has only ${this.size} bytes ` +
        '(truncated or corrupt file; download it again)');
    }
    const out = new Uint8Array(new ArrayBuffer(length));
    let done = 0;
    while (done < length) {
      const want = Math.min(MAX_READ, length - done);
      const { bytesRead } = await this.fh.read(out, done, want, position + done);
      if (bytesRead === 0) throw new UserError(`${this.path}: unexpected end of file while reading ${what}`);
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
