import type { DType, TensorData, TensorInfo } from './dtypes.ts';
import { toFloat32 } from './dtypes.ts';
import { UserError } from '../util/errors.ts';

/**
 * A lazily read set of named tensors: a .safetensors file, a sharded index, a torch .pt/.bin file or a
 * diffusers folder. Nothing but the header/index is read on open; `read` fetches one tensor.
 * Data comes back C-contiguous (row-major) and little-endian. F16/BF16 come back as raw bits in a
 * Uint16Array; use `readF32` to get float32 values.
 */
export interface TensorSource {
  /** The file or folder this was opened from. */
  readonly path: string;
  /** Tensor names in file order. */
  keys(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string): Promise<TensorData>;
  /** Any numeric dtype converted to float32 (F16/BF16 exactly). */
  readF32(name: string): Promise<Float32Array>;
  /** String metadata (safetensors `__metadata__`); empty for other formats. */
  metadata(): Record<string, string>;
  close(): Promise<void>;
}

/** Shared helpers for TensorSource implementations. */
export abstract class BaseTensorSource implements TensorSource {
  abstract readonly path: string;
  abstract keys(): string[];
  abstract info(name: string): TensorInfo;
  abstract read(name: string): Promise<TensorData>;
  abstract close(): Promise<void>;

  has(name: string): boolean {
    return this.keys().includes(name);
  }

  async readF32(name: string): Promise<Float32Array> {
    const { dtype } = this.info(name);
    return toFloat32(dtype, await this.read(name));
  }

  metadata(): Record<string, string> {
    return {};
  }

  protected missing(name: string): never {
    const keys = this.keys();
    const near = keys.filter((k) => k.endsWith(name.split('.').slice(-2).join('.'))).slice(0, 3);
    throw new UserError(
      `${this.path}: no tensor named "${name}" (${keys.length} tensors` +
      (near.length ? `; similar: ${near.join(', ')})` : ')'));
  }
}

/** A view of another source restricted to names starting with `prefix`, with the prefix removed. */
export class PrefixedSource extends BaseTensorSource {
  private names: string[];
  constructor(private inner: TensorSource, private prefix: string) {
    super();
    this.names = inner.keys().filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
    if (this.names.length === 0) {
      throw new UserError(`${inner.path}: no tensors under "${prefix}" (names start with e.g. "${inner.keys()[0] ?? ''}")`);
    }
  }
  get path(): string { return this.inner.path; }
  keys(): string[] { return this.names; }
  override has(name: string): boolean { return this.inner.has(this.prefix + name); }
  info(name: string): TensorInfo { return this.inner.info(this.prefix + name); }
  read(name: string): Promise<TensorData> { return this.inner.read(this.prefix + name); }
  override readF32(name: string): Promise<Float32Array> { return this.inner.readF32(this.prefix + name); }
  override metadata(): Record<string, string> { return this.inner.metadata(); }
  close(): Promise<void> { return this.inner.close(); }
}

/** Several sources under one namespace: each name is `<label><sep><inner name>`. */
export class MergedSource extends BaseTensorSource {
  private index = new Map<string, [TensorSource, string]>();
  private order: string[] = [];
  private parts: TensorSource[];
  constructor(readonly path: string, parts: Array<{ label: string; source: TensorSource }>, sep = '/') {
    super();
    for (const { label, source } of parts) {
      for (const k of source.keys()) {
        const name = label ? `${label}${sep}${k}` : k;
        if (this.index.has(name)) throw new UserError(`${path}: tensor "${name}" appears in more than one file`);
        this.index.set(name, [source, k]);
        this.order.push(name);
      }
    }
    this.parts = parts.map((p) => p.source);
  }
  keys(): string[] { return this.order; }
  override has(name: string): boolean { return this.index.has(name); }
  private get(name: string): [TensorSource, string] { return this.index.get(name) ?? this.missing(name); }
  info(name: string): TensorInfo { const [s, k] = this.get(name); return s.info(k); }
  read(name: string): Promise<TensorData> { const [s, k] = this.get(name); return s.read(k); }
  override readF32(name: string): Promise<Float32Array> { const [s, k] = this.get(name); return s.readF32(k); }
  override metadata(): Record<string, string> { return this.parts[0]?.metadata() ?? {}; }
  async close(): Promise<void> { await Promise.all(this.parts.map((p) => p.close())); }
}

export type { DType, TensorData, TensorInfo };
