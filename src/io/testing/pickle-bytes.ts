/**
 * Test helpers that write pickle opcodes byte by byte (no Python involved), so tests can craft both
 * legitimate torch pickles in several protocol styles and malicious ones.
 */
export class PickleBytes {
  private parts: number[] = [];
  constructor(readonly style: 'proto2' | 'proto4' = 'proto2') {}

  op(...bytes: number[]): this { this.parts.push(...bytes); return this; }
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v); return this.op(...b); }
  i32(v: number): this { const b = Buffer.alloc(4); b.writeInt32LE(v); return this.op(...b); }
  u64(v: number): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return this.op(...b); }
  ascii(s: string): this { return this.op(...Buffer.from(s, 'latin1')); }

  proto(n: number): this { return this.op(0x80, n); }
  mark(): this { return this.op(0x28); }
  stop(): this { return this.op(0x2e); }
  /** A string: BINUNICODE in the protocol-2 style, SHORT_BINUNICODE + MEMOIZE in the protocol-4 style. */
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (this.style === 'proto4' && b.length < 256) return this.op(0x8c, b.length, ...b, 0x94);
    return this.op(0x58).u32(b.length).op(...b);
  }
  /** An int: BININT1/BININT2/BININT, or LONG1 beyond 32 bits. */
  int(v: number | bigint): this {
    const n = BigInt(v);
    if (n >= 0n && n < 256n) return this.op(0x4b, Number(n));
    if (n >= 0n && n < 65536n) return this.op(0x4d, Number(n) & 0xff, Number(n) >> 8);
    if (n >= -(2n ** 31n) && n < 2n ** 31n) return this.op(0x4a).i32(Number(n));
    const bytes: number[] = [];
    for (let x = n; ;) {
      const b = Number(x & 0xffn);
      bytes.push(b);
      x >>= 8n;
      if ((x === 0n && !(b & 0x80)) || (x === -1n && b & 0x80)) break;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }
  /** A global: GLOBAL "module\nname\n" (protocol 2) or two strings + STACK_GLOBAL (protocol 4). */
  global(module: string, name: string): this {
    if (this.style === 'proto4') return this.str(module).str(name).op(0x93, 0x94);
    return this.op(0x63).ascii(`${module}\n${name}\n`);
  }
  tuple(items: Array<(p: this) => void>): this {
    if (items.length === 0) return this.op(0x29);
    if (items.length <= 3) { items.forEach((f) => f(this)); return this.op(0x84 + items.length); }
    this.mark(); items.forEach((f) => f(this)); return this.op(0x74);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export interface FakeTensor {
  name: string;
  storageType: string;
  key: string;
  storageNumel: number;
  offset: number;
  shape: number[];
  stride: number[];
}

/** The pickle torch.save writes for `{"state_dict": OrderedDict(name → tensor), "step": step}`. */
export function stateDictPickle(tensors: FakeTensor[], style: 'proto2' | 'proto4', step: number | bigint): Uint8Array {
  const p = new PickleBytes(style);
  p.proto(style === 'proto4' ? 4 : 2);
  if (style === 'proto4') p.op(0x95).u64(0); // a FRAME header: only a buffering hint
  p.op(0x7d).mark();
  p.str('state_dict').global('collections', 'OrderedDict').op(0x29, 0x52).mark();
  for (const t of tensors) {
    p.str(t.name).global('torch._utils', '_rebuild_tensor_v2');
    p.tuple([
      (q) => q.tuple([(r) => r.str('storage'), (r) => r.global('torch', t.storageType), (r) => r.str(t.key), (r) => r.str('cpu'), (r) => r.int(t.storageNumel)]).op(0x51),
      (q) => q.int(t.offset),
      (q) => q.tuple(t.shape.map((d) => (r: PickleBytes) => r.int(d)) as Array<(r: typeof q) => void>),
      (q) => q.tuple(t.stride.map((d) => (r: PickleBytes) => r.int(d)) as Array<(r: typeof q) => void>),
      (q) => q.op(0x89),
      (q) => q.global('collections', 'OrderedDict').op(0x29, 0x52),
    ]).op(0x52);
  }
  p.op(0x75); // SETITEMS into the OrderedDict
  p.str('step').int(step);
  p.op(0x75).stop();
  return p.bytes();
}
