import { UserError } from '../util/errors.ts';

/**
 * A restricted pickle reader. It interprets the pickle opcodes (protocols 0–5) into plain JS values and
 * never imports or calls anything: a GLOBAL resolves only through the caller's allow-list to a JS function
 * the caller wrote, and every other GLOBAL is refused with an error naming it. Out-of-band buffers, EXT
 * registry codes and the INST/OBJ class opcodes are refused too.
 *
 * Value mapping: dict → PyDict (a Map), list and tuple → Array, str → string, bytes → Uint8Array,
 * int → number (bigint beyond 2^53), float → number, None → null, bool → boolean.
 */
export class PickleError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

/** A Python dict (or OrderedDict). `state` keeps what a BUILD opcode attached (e.g. torch's `_metadata`). */
export class PyDict extends Map<unknown, unknown> {
  state: unknown = undefined;
}

/** A stand-in object that takes the state a BUILD opcode gives it (Python's `__setstate__`). */
export abstract class Buildable {
  abstract setState(state: unknown): void;
}

/** What an allow-listed global does when the pickle calls it (REDUCE/NEWOBJ) or BUILDs the result. */
export interface GlobalHandler {
  call?: (args: unknown[]) => unknown;
  /** The value itself when it is used as data (e.g. a storage type passed in a persistent id). */
  value?: unknown;
}

/** A global the pickle named; only ever created for allow-listed names. */
export class PyGlobal {
  constructor(readonly qualname: string, readonly handler: GlobalHandler) {}
}

export interface UnpickleOptions {
  /** Allowed globals by "module.name" (e.g. "collections.OrderedDict"). */
  globals: ReadonlyMap<string, GlobalHandler>;
  /** Resolves a persistent id (PERSID/BINPERSID); refused when absent. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Used in error messages. */
  source?: string;
  /** Start reading at this byte (default 0). */
  offset?: number;
  /** Told the byte just past the STOP opcode (files with several pickles one after another). */
  onEnd?: (end: number) => void;
}

export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): unknown {
  const src = opts.source ?? 'pickle';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = opts.offset ?? 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const fail = (msg: string): never => {
    throw new PickleError(`${src}: ${msg} (at byte ${pos})`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail('unexpected end of data (truncated pickle)');
  };
  const u8 = () => { need(1); return bytes[pos++]!; };
  const u16 = () => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const i32 = () => { need(4); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const u32 = () => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('length too large');
    return Number(v);
  };
  const take = (n: number) => { need(n); const b = bytes.subarray(pos, pos + n); pos += n; return b; };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated text line');
    const s = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const str = (n: number) => {
    try { return utf8.decode(take(n)); } catch { return fail('invalid UTF-8 in string'); }
  };
  const pop = () => { if (stack.length === 0) fail('stack underflow'); return stack.pop(); };
  const top = () => { if (stack.length === 0) fail('stack underflow'); return stack[stack.length - 1]; };
  const popMark = () => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) return fail('MARK expected');
    stack = prev;
    return items;
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) fail(`memo key ${i} not defined`);
    return memo.get(i);
  };
  const longFromBytes = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const resolveGlobal = (module: string, name: string) => {
    const qualname = `${module}.${name}`;
    const h = opts.globals.get(qualname);
    if (!h) {
      fail(`refusing to load global "${qualname}": it is not on the allow-list of what torch checkpoints use ` +
        '(the file may be malicious, or it stores Python objects other than tensors; re-save it as a plain state dict or safetensors)');
    }
    return new PyGlobal(qualname, h!);
  };
  const callGlobal = (fn: unknown, args: unknown, how: string) => {
    if (!(fn instanceof PyGlobal)) return fail(`${how} on something that is not an allowed global`);
    if (!Array.isArray(args)) return fail(`${how} of ${fn.qualname} without an argument tuple`);
    if (!fn.handler.call) return fail(`${fn.qualname} cannot be called`);
    return fn.handler.call(args);
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (!(target instanceof PyDict)) fail('SETITEM(S) on something that is not a dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (target as PyDict).set(kv[i], kv[i + 1]);
  };

  while (true) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: a buffering hint only
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length) fail('malformed pickle: stack not empty at STOP');
        opts.onEnd?.(pos);
        return stack[0];
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x8f: stack.push([]); break; // EMPTY_SET (as a list)
      case 0x74: case 0x6c: case 0x91: { const items = popMark(); stack.push(items); break; } // TUPLE, LIST, FROZENSET
      case 0x85: { const a = pop(); stack.push([a]); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail('APPEND to a non-list'); (l as unknown[]).push(v); break; }
      case 0x65: case 0x90: { // APPENDS, ADDITEMS
        const items = popMark(); const l = top();
        if (!Array.isArray(l)) fail('APPENDS to a non-list');
        (l as unknown[]).push(...items);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(longFromBytes(take(u8()))); break; // LONG1
      case 0x8b: { const n = i32(); if (n < 0) fail('negative LONG4 length'); stack.push(longFromBytes(take(n))); break; }
      case 0x49: { // INT (text); "00"/"01" are protocol-0 booleans
        const s = line();
        if (s === '00' || s === '01') { stack.push(s === '01'); break; }
        const v = BigInt(s);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x4c: { // LONG (text)
        const v = BigInt(line().replace(/L$/, ''));
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: { need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x46: stack.push(Number.parseFloat(line())); break; // FLOAT
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(u64())); break; // BINUNICODE8
      case 0x56: stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))); break; // UNICODE
      case 0x54: { const n = i32(); if (n < 0) fail('negative BINSTRING length'); stack.push(new TextDecoder('latin1').decode(take(n))); break; }
      case 0x55: stack.push(new TextDecoder('latin1').decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x53: stack.push(line().replace(/^(['"])(.*)\1$/, '$2')); break; // STRING
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x8e: case 0x96: stack.push(take(u64()).slice()); break; // BINBYTES8, BYTEARRAY8
      case 0x63: { const module = line(); const name = line(); stack.push(resolveGlobal(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(); const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(callGlobal(fn, args, 'REDUCE')); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(callGlobal(cls, args, 'NEWOBJ')); break; } // NEWOBJ
      case 0x92: { pop(); const args = pop(); const cls = pop(); stack.push(callGlobal(cls, args, 'NEWOBJ_EX')); break; }
      case 0x62: { // BUILD: dict state on dicts (torch attaches `_metadata`); tensors ignore state; stand-ins that
        // define setState (numpy arrays) take it.
        const state = pop(); const obj = top();
        if (obj instanceof PyDict) obj.state = state;
        else if (obj instanceof Buildable) obj.setState(state);
        else if (!(typeof obj === 'object' && obj !== null && 'acceptsBuild' in obj)) fail('BUILD on an object that cannot take state');
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id without a loader');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!opts.persistentLoad) fail('persistent id without a loader');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x67: stack.push(memoGet(Number(line()))); break; // GET
      case 0x69: case 0x6f: fail('refusing INST/OBJ opcodes: they instantiate arbitrary classes'); break;
      case 0x82: case 0x83: case 0x84: fail('refusing EXT opcodes: they name globals through the copyreg registry'); break;
      case 0x97: case 0x98: fail('refusing out-of-band buffers (NEXT_BUFFER/READONLY_BUFFER)'); break;
      default: fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
