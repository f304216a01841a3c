import { inflateRawSync } from 'node:zlib';
import type { RandomAccessFile } from './random-access.ts';
import { UserError } from '../util/errors.ts';

/**
 * A read-only ZIP directory (what torch.save writes), including zip64 for archives and entries over 4 GiB.
 * Only the central directory is read on open; entry data is read on demand.
 */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

export class ZipReader {
  private dataOffsets = new Map<string, number>();
  private constructor(private file: RandomAccessFile, readonly entries: Map<string, ZipEntry>) {}

  private bad(what: string): never {
    throw new UserError(`${this.file.path}: ${what}`);
  }

  static async open(file: RandomAccessFile): Promise<ZipReader> {
    const bad = (what: string): never => {
      throw new UserError(`${file.path}: not a readable torch/zip file: ${what}`);
    };
    if (file.size < 22) bad(`only ${file.size} bytes (truncated, or not a torch.save zip file)`);
    const tailLen = Math.min(file.size, 22 + 0xffff + 20);
    const tailStart = file.size - tailLen;
    const tail = await file.read(tailStart, tailLen, 'zip end record');
    const dv = new DataView(tail.buffer);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (dv.getUint32(i, true) === SIG_EOCD) { eocd = i; break; }
    }
    if (eocd < 0) {
      const head = await file.read(0, 4, 'signature');
      const isZip = new DataView(head.buffer).getUint32(0, true) === SIG_LOCAL;
      bad(isZip
        ? 'the zip end-of-central-directory record is missing (the file is truncated; download it again)'
        : 'no zip signature (not a zip file, nor a legacy torch.save file)');
    }
    let count = dv.getUint16(eocd + 10, true);
    let cdSize = dv.getUint32(eocd + 12, true);
    let cdOffset = dv.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || dv.getUint32(loc, true) !== SIG_EOCD64_LOCATOR) bad('zip64 locator missing');
      const eocd64At = Number(dv.getBigUint64(loc + 8, true));
      const rec = await file.read(eocd64At, 56, 'zip64 end record');
      const rdv = new DataView(rec.buffer);
      if (rdv.getUint32(0, true) !== SIG_EOCD64) bad('bad zip64 end record');
      count = Number(rdv.getBigUint64(32, true));
      cdSize = Number(rdv.getBigUint64(40, true));
      cdOffset = Number(rdv.getBigUint64(48, true));
    }
    if (cdOffset + cdSize > file.size) bad('the central directory lies past the end of the file (truncated file)');
    const cd = await file.read(cdOffset, cdSize, 'zip central directory');
    const cdv = new DataView(cd.buffer);
    const entries = new Map<string, ZipEntry>();
    const dec = new TextDecoder();
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize || cdv.getUint32(p, true) !== SIG_CENTRAL) bad(`corrupt central directory at entry ${i}`);
      const method = cdv.getUint16(p + 10, true);
      let compressedSize = cdv.getUint32(p + 20, true);
      let size = cdv.getUint32(p + 24, true);
      const nameLen = cdv.getUint16(p + 28, true);
      const extraLen = cdv.getUint16(p + 30, true);
      const commentLen = cdv.getUint16(p + 32, true);
      let localHeaderOffset = cdv.getUint32(p + 42, true);
      const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // zip64 extended information: 64-bit values for exactly the fields that hold 0xFFFFFFFF.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = cdv.getUint16(e, true);
        const len = cdv.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          const next = () => { const v = Number(cdv.getBigUint64(q, true)); q += 8; return v; };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        e += 4 + len;
      }
      entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
      p = extraEnd + commentLen;
    }
    return new ZipReader(file, entries);
  }

  /** Absolute file offset of an entry's data (after its local header). */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(entry.name);
    if (known !== undefined) return known;
    const h = await this.file.read(entry.localHeaderOffset, 30, `local header of ${entry.name}`);
    const dv = new DataView(h.buffer);
    if (dv.getUint32(0, true) !== SIG_LOCAL) this.bad(`corrupt zip: bad local header for ${entry.name}`);
    const at = entry.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
    if (at + entry.compressedSize > this.file.size) {
      this.bad(`zip entry ${entry.name} runs past the end of the file (truncated file; download it again)`);
    }
    this.dataOffsets.set(entry.name, at);
    return at;
  }

  /** Whole entry contents (inflated if needed). Meant for small entries such as data.pkl. */
  async readEntry(entry: ZipEntry): Promise<Uint8Array> {
    const at = await this.dataOffset(entry);
    const raw = await this.file.read(at, entry.compressedSize, entry.name);
    if (entry.method === 0) return raw;
    if (entry.method === 8) return new Uint8Array(inflateRawSync(raw));
    return this.bad(`zip entry ${entry.name} uses unsupported compression method ${entry.method}`);
  }

  /** `length` bytes from `offset` inside an entry; stored entries are read in place, without the rest. */
  async readRange(entry: ZipEntry, offset: number, length: number): Promise<Uint8Array> {
    if (offset + length > entry.size) {
      this.bad(`zip entry ${entry.name} has ${entry.size} bytes but ${offset + length} are needed (corrupt checkpoint)`);
    }
    if (entry.method !== 0) {
      const all = await this.readEntry(entry);
      return all.slice(offset, offset + length);
    }
    return this.file.read((await this.dataOffset(entry)) + offset, length, entry.name);
  }
}
