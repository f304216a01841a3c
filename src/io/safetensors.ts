import { open, rename, rm } from 'node:fs/promises';
import { endianness } from 'node:os';
import { DTYPE_SIZE, dtypeOfArray, isDType, numel, typedView } from './dtypes.ts';
import type { DType, TensorData, TensorInfo } from './dtypes.ts';
import { RandomAccessFile } from './random-access.ts';
import { BaseTensorSource } from './tensor-source.ts';
import { UserError } from '../util/errors.ts';

/** Headers larger than this are refused (the format's own reference reader uses 100 MB). */
const MAX_HEADER = 100_000_000;

if (endianness() !== 'LE') throw new Error('facelift-ts io assumes a little-endian machine');

interface Entry extends TensorInfo {
  begin: number;
  end: number;
}

/** One .safetensors file, opened lazily: only the header is read on open. */
export class SafetensorsFile extends BaseTensorSource {
  private constructor(
    readonly path: string,
    private file: RandomAccessFile,
    private entries: Map<string, Entry>,
    private meta: Record<string, string>,
    private dataStart: number,
  ) { super(); }

  static async open(path: string): Promise<SafetensorsFile> {
    const file = await RandomAccessFile.open(path);
    try {
      const { entries, meta, dataStart } = await readHeader(file);
      return new SafetensorsFile(path, file, entries, meta, dataStart);
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  keys(): string[] { return [...this.entries.keys()]; }
  override has(name: string): boolean { return this.entries.has(name); }

  info(name: string): TensorInfo {
    const e = this.entries.get(name) ?? this.missing(name);
    return { dtype: e.dtype, shape: [...e.shape] };
  }

  async read(name: string): Promise<TensorData> {
    const e = this.entries.get(name) ?? this.missing(name);
    const bytes = await this.file.read(this.dataStart + e.begin, e.end - e.begin, `tensor "${name}"`);
    return typedView(e.dtype, bytes.buffer as ArrayBuffer, 0, numel(e.shape));
  }

  override metadata(): Record<string, string> { return { ...this.meta }; }

  /** Byte range of a tensor inside the file (for callers that map files themselves). */
  byteRange(name: string): { offset: number; length: number } {
    const e = this.entries.get(name) ?? this.missing(name);
    return { offset: this.dataStart + e.begin, length: e.end - e.begin };
  }

  close(): Promise<void> { return this.file.close(); }
}

async function readHeader(file: RandomAccessFile) {
  const bad = (what: string): never => {
    throw new UserError(`${file.path}: not a valid safetensors file: ${what}`);
  };
  if (file.size < 8) bad(`the file has ${file.size} bytes, fewer than the 8-byte header length`);
  const lenBytes = await file.read(0, 8, 'header length');
  const n = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (n > MAX_HEADER) bad(`header length ${n} is implausibly large (corrupt file?)`);
  if (8 + n > file.size) bad(`header claims ${n} bytes but the file has only ${file.size - 8} after the length (truncated file; download it again)`);
  const text = new TextDecoder().decode(await file.read(8, n, 'header'));
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return bad(`header is not JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return bad('header is not a JSON object');
  const dataStart = 8 + n;
  const dataSize = file.size - dataStart;
  const entries = new Map<string, Entry>();
  let meta: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null) bad('__metadata__ is not an object');
      meta = Object.fromEntries(Object.entries(raw as object).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const r = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof r?.dtype !== 'string' || !isDType(r.dtype)) bad(`tensor "${name}" has unsupported dtype ${JSON.stringify(r?.dtype)}`);
    const dtype = r.dtype as DType;
    if (!Array.isArray(r.shape) || !r.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`tensor "${name}" has a bad shape`);
    const shape = r.shape as number[];
    const off = r.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`tensor "${name}" has bad data_offsets`);
    const [begin, end] = off as [number, number];
    const want = numel(shape) * DTYPE_SIZE[dtype];
    if (end < begin || end - begin !== want) {
      bad(`tensor "${name}" (${dtype} [${shape.join(', ')}]) needs ${want} bytes but data_offsets [${begin}, ${end}] give ${end - begin}`);
    }
    if (end > dataSize) {
      bad(`tensor "${name}" data_offsets [${begin}, ${end}] run past the end of the data section (${dataSize} bytes; truncated file?)`);
    }
    entries.set(name, { dtype, shape, begin, end });
  }
  return { entries, meta, dataStart };
}

/** A tensor to write. `dtype` defaults from the array type (Uint16Array → F16 unless 'BF16' is given). */
export interface TensorToWrite {
  dtype?: DType;
  shape: readonly number[];
  data: TensorData;
}

/**
 * Writes a .safetensors file: header padded with spaces to a multiple of 8, tensors ordered by element size
 * (largest first) then name, so every tensor starts at a multiple of its element size. The file is written
 * to a temporary name and renamed, so a crash never leaves a half-written file under `path`.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const list = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).map(([name, t]) => {
    const dtype = t.dtype ?? dtypeOfArray(t.data);
    const expectedBytes = numel(t.shape) * DTYPE_SIZE[dtype];
    if (t.data.byteLength !== expectedBytes) {
      throw new Error(`writeSafetensors: "${name}" has ${t.data.byteLength} bytes, ${dtype} [${t.shape.join(', ')}] needs ${expectedBytes}`);
    }
    if (DTYPE_SIZE[dtype] !== t.data.BYTES_PER_ELEMENT) {
      throw new Error(`writeSafetensors: "${name}" is ${dtype} but its array holds ${t.data.BYTES_PER_ELEMENT}-byte elements`);
    }
    return { name, dtype, shape: [...t.shape], data: t.data };
  });
  list.sort((a, b) => DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`writeSafetensors: metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const t of list) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(json.length));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(lenBuf);
    await fh.write(json);
    for (const t of list) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await fh.write(bytes, done, Math.min(1 << 30, bytes.length - done));
        done += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}
