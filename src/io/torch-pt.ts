import { DTYPE_SIZE, isDType, numel, typedView } from './dtypes.ts';
import type { DType, TensorData, TensorInfo } from './dtypes.ts';
import { PyDict, PyGlobal, PickleError, unpickle } from './pickle.ts';
import type { GlobalHandler } from './pickle.ts';
import { RandomAccessFile } from './random-access.ts';
import { BaseTensorSource } from './tensor-source.ts';
import { ZipReader } from './zip.ts';
import type { ZipEntry } from './zip.ts';
import { UserError } from '../util/errors.ts';

/** A torch storage named by a persistent id: its bytes are the zip entry `<prefix>data/<key>`. */
export class StorageRef {
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number, readonly location: string) {}
}

/** A tensor as torch pickles it: a view (offset, shape, stride in elements) into a storage. */
export class TensorRef {
  readonly acceptsBuild = true;
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
  ) {}
  get dtype(): DType { return this.storage.dtype; }
}

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8',
  ByteStorage: 'U8', BoolStorage: 'BOOL', UntypedStorage: 'U8',
};

const TORCH_DTYPES: Record<string, DType> = {
  float32: 'F32', float: 'F32', float64: 'F64', double: 'F64', float16: 'F16', half: 'F16', bfloat16: 'BF16',
  int64: 'I64', long: 'I64', int32: 'I32', int: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

const intList = (v: unknown, what: string): number[] => {
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
    throw new PickleError(`tensor ${what} is not a tuple of non-negative ints`);
  }
  return v as number[];
};

function rebuildTensor(args: unknown[]): TensorRef {
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!(storage instanceof StorageRef)) throw new PickleError('tensor rebuilt from something that is not a storage');
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new PickleError('tensor storage offset is not an int');
  const shape = intList(size, 'size');
  const strides = intList(stride, 'stride');
  if (shape.length !== strides.length) throw new PickleError('tensor size and stride differ in length');
  return new TensorRef(storage, offset as number, [...shape], [...strides], requiresGrad === true);
}

/**
 * The allow-list: every global a torch state dict / training checkpoint pickle uses, each mapped to a
 * JS stand-in. Nothing else can be named.
 */
export function torchGlobals(): Map<string, GlobalHandler> {
  const g = new Map<string, GlobalHandler>();
  g.set('collections.OrderedDict', { call: () => new PyDict() });
  g.set('builtins.dict', { call: () => new PyDict() });
  g.set('torch._utils._rebuild_tensor', { call: rebuildTensor });
  g.set('torch._utils._rebuild_tensor_v2', { call: rebuildTensor });
  const param = {
    call: (args: unknown[]) => {
      if (!(args[0] instanceof TensorRef)) throw new PickleError('Parameter rebuilt from something that is not a tensor');
      return args[0];
    },
  };
  g.set('torch._utils._rebuild_parameter', param);
  g.set('torch._utils._rebuild_parameter_with_state', param);
  g.set('torch.Size', { call: (args) => intList(args[0], 'Size') });
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) g.set(`torch.${name}`, { value: dtype });
  for (const [name, dtype] of Object.entries(TORCH_DTYPES)) g.set(`torch.${name}`, { value: dtype });
  // Python 3 bytes pickled with protocol 2 arrive as _codecs.encode(str, 'latin1').
  g.set('_codecs.encode', {
    call: (args) => {
      const [s, enc] = args;
      if (typeof s !== 'string') throw new PickleError('_codecs.encode of a non-string');
      if (enc === 'latin1' || enc === 'latin-1') return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
      return new TextEncoder().encode(s);
    },
  });
  return g;
}

/**
 * A decoded torch.save file: the pickled object (dicts, lists, numbers, TensorRefs) and a way to read storage
 * bytes — from the zip's `data/<key>` entries (torch ≥ 1.6) or from the records after the pickles (the legacy
 * format torch writes with `_use_new_zipfile_serialization=False`, and every file from before 1.6).
 */
export interface TorchPickle {
  root: unknown;
  file: RandomAccessFile;
  /** `length` bytes at `offset` of a storage's data. */
  readStorage(storage: StorageRef, offset: number, length: number): Promise<Uint8Array>;
}

function storageResolver(path: string, storages: Map<string, StorageRef>): (pid: unknown) => StorageRef {
  return (pid) => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
      throw new PickleError(`${path}: unsupported persistent id ${JSON.stringify(pid)}`);
    }
    const [, type, key, location, n] = pid as [string, unknown, unknown, unknown, unknown];
    const dtype = type instanceof PyGlobal ? type.handler.value : undefined;
    if (typeof dtype !== 'string' || !isDType(dtype) || typeof key !== 'string' || !Number.isSafeInteger(n)) {
      throw new PickleError(`${path}: malformed storage id ${JSON.stringify(pid)}`);
    }
    let s = storages.get(key);
    if (!s) storages.set(key, (s = new StorageRef(key, dtype, n as number, String(location))));
    return s;
  };
}

export async function loadTorchPickle(path: string): Promise<TorchPickle> {
  const file = await RandomAccessFile.open(path);
  try {
    const head = await file.read(0, Math.min(4, file.size), 'the file header');
    if (head[0] === 0x80) return await loadLegacy(path, file);
    const zip = await ZipReader.open(file);
    const pkl = [...zip.entries.keys()]
      .filter((n) => /^([^/]+\/)?data\.pkl$/.test(n))
      .sort((a, b) => a.length - b.length)[0];
    if (!pkl) throw new UserError(`${path}: zip file without data.pkl (not a torch.save checkpoint)`);
    const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
    const bo = zip.entries.get(`${prefix}byteorder`);
    if (bo && new TextDecoder().decode(await zip.readEntry(bo)).trim() !== 'little') {
      throw new UserError(`${path}: big-endian torch checkpoints are not supported`);
    }
    const storages = new Map<string, StorageRef>();
    const root = unpickle(await zip.readEntry(zip.entries.get(pkl)!), {
      globals: torchGlobals(),
      source: `${path} (${pkl})`,
      persistentLoad: storageResolver(path, storages),
    });
    return {
      root,
      file,
      readStorage: async (st, offset, length) => {
        const name = `${prefix}data/${st.key}`;
        const entry: ZipEntry | undefined = zip.entries.get(name);
        if (!entry) throw new UserError(`${path}: storage ${st.key} needs ${name}, which the archive lacks (corrupt checkpoint)`);
        return zip.readRange(entry, offset, length);
      },
    };
  } catch (err) {
    await file.close();
    throw err;
  }
}

/** torch's legacy magic number (the first pickle of a legacy file). */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/**
 * The legacy layout: pickles of the magic number, the protocol version (1001) and sys_info, then the object, then
 * the sorted list of storage keys; then, per key in that order, an int64 element count and the raw little-endian
 * elements. The pickles are read from a growing prefix of the file, so big files are never read whole.
 */
async function loadLegacy(path: string, file: RandomAccessFile): Promise<TorchPickle> {
  for (let window = Math.min(file.size, 1 << 22); ; window = Math.min(file.size, window * 4)) {
    const bytes = await file.read(0, window, 'the pickles');
    let pos = 0;
    const storages = new Map<string, StorageRef>();
    const next = (opts: { persistent?: boolean } = {}) =>
      unpickle(bytes, {
        globals: torchGlobals(),
        source: path,
        offset: pos,
        onEnd: (e) => { pos = e; },
        ...(opts.persistent ? { persistentLoad: storageResolver(path, storages) } : {}),
      });
    try {
      const magic = next();
      if (BigInt(magic as number | bigint) !== LEGACY_MAGIC) throw new UserError(`${path}: not a torch.save file (no zip signature, no legacy magic number)`);
      const version = next();
      if (version !== 1001) throw new UserError(`${path}: legacy torch file of protocol ${String(version)}, only 1001 is supported`);
      const sys = next();
      if (sys instanceof PyDict && sys.get('little_endian') === false) throw new UserError(`${path}: big-endian torch checkpoints are not supported`);
      const root = next({ persistent: true });
      const keys = next();
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new PickleError(`${path}: malformed storage key list`);
      // Where each storage's elements start: walk the (count, data) records.
      const at = new Map<string, number>();
      let off = pos;
      for (const k of keys as string[]) {
        const st = storages.get(k);
        if (!st) throw new PickleError(`${path}: storage ${k} is listed but no tensor uses it`);
        const count = new DataView((await file.read(off, 8, `storage ${k}`)).buffer).getBigInt64(0, true);
        if (Number(count) !== st.numel) throw new UserError(`${path}: storage ${k} holds ${count} elements, its tensors say ${st.numel} (corrupt file)`);
        at.set(k, off + 8);
        off += 8 + st.numel * DTYPE_SIZE[st.dtype];
      }
      if (off > file.size) throw new UserError(`${path}: the storages end at byte ${off} but the file has ${file.size} (truncated file)`);
      return {
        root,
        file,
        readStorage: async (st, offset, length) => {
          const start = at.get(st.key);
          if (start === undefined) throw new UserError(`${path}: storage ${st.key} is not in the file (corrupt checkpoint)`);
          return file.read(start + offset, length, `storage ${st.key}`);
        },
      };
    } catch (e) {
      const truncated = e instanceof PickleError && /unexpected end of data/.test(e.message);
      if (!truncated || window >= file.size) throw e;
    }
  }
}

/** Every tensor in a pickled object, named by its path with "." (the names torch state dicts use). */
export function flattenTensors(root: unknown, out = new Map<string, TensorRef>(), prefix = ''): Map<string, TensorRef> {
  if (root instanceof TensorRef) {
    out.set(prefix.replace(/\.$/, ''), root);
  } else if (root instanceof PyDict) {
    for (const [k, v] of root) {
      if (typeof k === 'string' || typeof k === 'number') flattenTensors(v, out, `${prefix}${k}.`);
    }
  } else if (Array.isArray(root)) {
    root.forEach((v, i) => flattenTensors(v, out, `${prefix}${i}.`));
  }
  return out;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i]!;
  }
  return true;
}

/** Element-sized unsigned view, for copying elements of any dtype without interpreting them. */
function rawView(buf: ArrayBuffer, size: number): Uint8Array | Uint16Array | Uint32Array | BigUint64Array {
  return size === 1 ? new Uint8Array(buf) : size === 2 ? new Uint16Array(buf) : size === 4 ? new Uint32Array(buf) : new BigUint64Array(buf);
}

/**
 * A torch.save file (.pt/.pth/.bin/.ckpt, zip format) as a TensorSource. Tensor names are paths into the
 * pickled object, e.g. "model.patch_embedder.1.weight" for {"model": state_dict}. Non-contiguous views
 * (strided storage) are materialised into a contiguous copy; shared storages are read per tensor.
 */
export class TorchFile extends BaseTensorSource {
  private constructor(readonly path: string, readonly pickle: TorchPickle, private tensors: Map<string, TensorRef>) { super(); }

  static async open(path: string): Promise<TorchFile> {
    const p = await loadTorchPickle(path);
    return new TorchFile(path, p, flattenTensors(p.root));
  }

  /** The whole pickled object (for non-tensor values such as "fwdbwd_pass_step"). */
  get root(): unknown { return this.pickle.root; }

  keys(): string[] { return [...this.tensors.keys()]; }
  override has(name: string): boolean { return this.tensors.has(name); }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name) ?? this.missing(name);
    return { dtype: t.dtype, shape: [...t.shape] };
  }

  async read(name: string): Promise<TensorData> {
    const t = this.tensors.get(name) ?? this.missing(name);
    const size = DTYPE_SIZE[t.dtype];
    const n = numel(t.shape);
    if (n === 0) return typedView(t.dtype, new ArrayBuffer(0), 0, 0);
    await this.pickle.readStorage(t.storage, 0, 0); // a missing storage is named before any range check
    let span = 1;
    for (let i = 0; i < t.shape.length; i++) span += (t.shape[i]! - 1) * t.stride[i]!;
    if (t.offset + span > t.storage.numel) {
      throw new UserError(`${this.path}: tensor "${name}" reaches element ${t.offset + span} of a ${t.storage.numel}-element storage (corrupt checkpoint)`);
    }
    const bytes = await this.pickle.readStorage(t.storage, t.offset * size, span * size);
    if (isContiguous(t.shape, t.stride)) return typedView(t.dtype, bytes.buffer as ArrayBuffer, 0, n);
    const src = rawView(bytes.buffer as ArrayBuffer, size);
    const out = new ArrayBuffer(n * size);
    const dst = rawView(out, size);
    const nd = t.shape.length;
    const idx = new Array<number>(nd).fill(0);
    let off = 0;
    for (let i = 0; i < n; i++) {
      dst[i] = src[off]!;
      for (let d = nd - 1; d >= 0; d--) {
        idx[d]!++;
        off += t.stride[d]!;
        if (idx[d]! < t.shape[d]!) break;
        off -= idx[d]! * t.stride[d]!;
        idx[d] = 0;
      }
    }
    return typedView(t.dtype, out, 0, n);
  }

  close(): Promise<void> { return this.pickle.file.close(); }
}
