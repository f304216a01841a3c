/**
 * Writing checkpoints in torch.save's zip format (what `torch.load` reads): a STORED zip with
 * `archive/data.pkl` (a protocol-2 pickle of the object, tensors as persistent ids into storages),
 * `archive/data/<key>` (one little-endian storage per tensor, 64-byte aligned as torch writes them),
 * `archive/version` and `archive/byteorder`. Entries carry CRC-32s (torch's reader checks them);
 * zip64 records are written when an offset or size needs them.
 *
 * Values are plain data: null, booleans, integers (`number` that is an integer, or `bigint`), floats
 * (`pyFloat(x)`, so that 1.0 stays a float), strings, arrays (lists), `PyTuple`s, Maps (dicts; `ordered: true`
 * gives a collections.OrderedDict, as state dicts are) and tensors (`torchTensor`).
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { DType } from './dtypes.ts';
import { centralRecord, endRecords, localHeader } from './zip-records.ts';

export class PyFloat {
  constructor(readonly value: number) {}
}
export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}
export class PyDictValue {
  constructor(
    readonly entries: ReadonlyMap<string | number, PyValue>,
    readonly ordered = false,
  ) {}
}
export interface TorchTensorValue {
  readonly kind: 'tensor';
  readonly dtype: Extract<DType, 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8' | 'BOOL'>;
  readonly shape: readonly number[];
  /** Contiguous row-major data (F16/BF16 as raw bits). */
  readonly data: Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
}
export type PyValue =
  null | boolean | number | bigint | string | PyFloat | PyTuple | PyDictValue | TorchTensorValue | PyValue[];

export const pyFloat = (x: number): PyFloat => new PyFloat(x);
export const pyTuple = (...items: PyValue[]): PyTuple => new PyTuple(items);
export const pyDict = (entries: Iterable<readonly [string | number, PyValue]>, ordered = false): PyDictValue =>
  new PyDictValue(new Map(entries), ordered);
export function torchTensor(
  data: TorchTensorValue['data'],
  shape: readonly number[],
  dtype?: TorchTensorValue['dtype'],
): TorchTensorValue {
  const d =
    dtype ??
    (data instanceof Float32Array
      ? 'F32'
      : data instanceof Float64Array
        ? 'F64'
        : data instanceof Int32Array
          ? 'I32'
          : data instanceof BigInt64Array
            ? 'I64'
            : data instanceof Uint16Array
              ? 'F16'
              : 'U8');
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length)
    throw new RangeError(`torchTensor: shape [${shape.join(', ')}] has ${n} elements, data ${data.length}`);
  return { kind: 'tensor', dtype: d, shape: [...shape], data };
}

const STORAGE_NAME: Record<TorchTensorValue['dtype'], string> = {
  F32: 'FloatStorage',
  F64: 'DoubleStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  I64: 'LongStorage',
  I32: 'IntStorage',
  U8: 'ByteStorage',
  BOOL: 'BoolStorage',
};

/** Protocol-2 pickle opcodes for the value; tensors are collected into `storages` in pickling order. */
class Pickler {
  private out: number[] = [];
  readonly storages: TorchTensorValue[] = [];

  dump(v: PyValue): Uint8Array {
    this.op(0x80, 2);
    this.value(v);
    this.op(0x2e);
    return Uint8Array.from(this.out);
  }

  private op(...b: number[]): void {
    for (const x of b) this.out.push(x);
  }
  private bytes(b: Uint8Array): void {
    for (const x of b) this.out.push(x);
  }
  private u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.bytes(b);
  }

  private str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.op(0x58);
    this.u32(b.length);
    this.bytes(b);
  }
  private global(module: string, name: string): void {
    this.op(0x63);
    this.bytes(Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }
  private int(v: number | bigint): void {
    const n = BigInt(v);
    if (n >= 0n && n < 256n) return this.op(0x4b, Number(n));
    if (n >= 0n && n < 65536n) return this.op(0x4d, Number(n) & 0xff, Number(n) >> 8);
    if (n >= -(2n ** 31n) && n < 2n ** 31n) {
      this.op(0x4a);
      const b = Buffer.alloc(4);
      b.writeInt32LE(Number(n));
      return this.bytes(b);
    }
    const bytes: number[] = [];
    for (let x = n; ;) {
      const b = Number(x & 0xffn);
      bytes.push(b);
      x >>= 8n;
      if ((x === 0n && !(b & 0x80)) || (x === -1n && b & 0x80)) break;
    }
    this.op(0x8a, bytes.length, ...bytes);
  }
  private float(x: number): void {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(x);
    this.op(0x47);
    this.bytes(b);
  }
  private tuple(items: readonly (() => void)[]): void {
    if (items.length === 0) return this.op(0x29);
    this.op(0x28);
    for (const f of items) f();
    this.op(0x74);
  }

  private value(v: PyValue): void {
    if (v === null) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) return this.int(v);
      return this.float(v);
    }
    if (typeof v === 'string') return this.str(v);
    if (v instanceof PyFloat) return this.float(v.value);
    if (v instanceof PyTuple) return this.tuple(v.items.map((x) => () => this.value(x)));
    if (Array.isArray(v)) {
      this.op(0x5d);
      if (v.length) {
        this.op(0x28);
        for (const x of v) this.value(x);
        this.op(0x65);
      }
      return;
    }
    if (v instanceof PyDictValue) {
      if (v.ordered) {
        this.global('collections', 'OrderedDict');
        this.op(0x29, 0x52);
      } else this.op(0x7d);
      if (v.entries.size) {
        this.op(0x28);
        for (const [k, x] of v.entries) {
          this.value(k);
          this.value(x);
        }
        this.op(0x75);
      }
      return;
    }
    return this.tensor(v);
  }

  private tensor(t: TorchTensorValue): void {
    const key = String(this.storages.length);
    this.storages.push(t);
    const stride: number[] = [];
    let s = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      stride[i] = s;
      s *= t.shape[i]!;
    }
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple([
      () => {
        this.tuple([
          () => this.str('storage'),
          () => this.global('torch', STORAGE_NAME[t.dtype]),
          () => this.str(key),
          () => this.str('cpu'),
          () => this.int(t.data.length),
        ]);
        this.op(0x51); // BINPERSID
      },
      () => this.int(0),
      () => this.tuple(t.shape.map((d) => () => this.int(d))),
      () => this.tuple(stride.map((d) => () => this.int(d))),
      () => this.op(0x89),
      () => {
        this.global('collections', 'OrderedDict');
        this.op(0x29, 0x52);
      },
    ]);
    this.op(0x52);
  }
}

const ALIGN = 64;
/** Largest piece written or checksummed at once (fs writes are limited to 2 GiB). */
const CHUNK = 1 << 26;

/** Streams STORED zip entries to a file, 64-byte aligning each entry's data like torch's writer. */
class ZipStream {
  private pos = 0;
  private central: Buffer[] = [];
  private count = 0;
  constructor(private fh: FileHandle) {}

  private async write(b: Uint8Array): Promise<void> {
    let done = 0;
    while (done < b.length) {
      const { bytesWritten } = await this.fh.write(b, done, Math.min(CHUNK, b.length - done), this.pos + done);
      done += bytesWritten;
    }
    this.pos += b.length;
  }

  async entry(name: string, data: Uint8Array): Promise<void> {
    const nameBytes = Buffer.from(name, 'utf8');
    const offset = this.pos;
    const headerEnd = offset + 30 + nameBytes.length + 4;
    const padLen = (ALIGN - (headerEnd % ALIGN)) % ALIGN;
    const extra = Buffer.alloc(4 + padLen);
    extra.writeUInt16LE(0x4246, 0); // 'FB': torch's padding field
    extra.writeUInt16LE(padLen, 2);
    let crc = 0;
    for (let i = 0; i < data.length; i += CHUNK) crc = crc32(data.subarray(i, i + CHUNK), crc);
    const record = { name: nameBytes, size: data.length, crc, offset, localExtra: extra };
    await this.write(localHeader(record));
    await this.write(data);
    this.central.push(centralRecord(record));
    this.count++;
  }

  async finish(): Promise<void> {
    const cd = Buffer.concat(this.central);
    const cdOffset = this.pos;
    await this.write(cd);
    await this.write(endRecords(this.count, cd.length, cdOffset));
  }
}

function tensorBytes(t: TorchTensorValue): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Writes `value` as torch.save would, atomically: to `<path>.tmp-<pid>`, fsynced, then renamed over `path`.
 * `archiveName` is the folder inside the zip (torch uses the file's stem; any name loads).
 */
export async function saveTorch(path: string, value: PyValue, archiveName = 'archive'): Promise<void> {
  const p = new Pickler();
  const pkl = p.dump(value);
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    const zip = new ZipStream(fh);
    await zip.entry(`${archiveName}/data.pkl`, pkl);
    for (let i = 0; i < p.storages.length; i++) {
      await zip.entry(`${archiveName}/data/${i}`, tensorBytes(p.storages[i]!));
    }
    await zip.entry(`${archiveName}/version`, Buffer.from('3\n'));
    await zip.entry(`${archiveName}/byteorder`, Buffer.from('little'));
    await zip.finish();
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await rename(tmp, path);
}
