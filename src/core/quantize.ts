/**
 * Weight quantization for int8 inference (onnxruntime's `DynamicQuantizeMatMul`): a linear layer's float32 weight
 * W [out, in] becomes int8 B [in, out] with one symmetric scale per output (column of B), and the activations are
 * quantized per run by onnxruntime (uint8, one scale per tensor).
 *
 * The weights use 7 bits (±63), as onnxruntime's own quantizer does with `reduce_range`: its u8×s8 kernels on CPUs
 * without VNNI sum pairs of products in int16, which saturates with full-range weights (a 4096×1024 by 1024×1024
 * product came out at 15.7 dB SNR with ±127, 42 dB with ±63, on this machine).
 */
export const INT8_WEIGHT_MAX = 63;

export interface QuantizedColumns {
  /** int8 [in, out] (B = round(Wᵀ / scale)). */
  q: Int8Array;
  /** [out] */
  scale: Float32Array;
}

export function quantizeColumns(w: Float32Array, out: number, inF: number, qmax = INT8_WEIGHT_MAX): QuantizedColumns {
  if (w.length !== out * inF) throw new RangeError(`quantizeColumns: ${w.length} values are not ${out}×${inF}`);
  const q = new Int8Array(out * inF);
  const scale = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let m = 0;
    for (let i = 0; i < inF; i++) m = Math.max(m, Math.abs(w[o * inF + i]!));
    const s = m > 0 ? m / qmax : 1;
    scale[o] = s;
    for (let i = 0; i < inF; i++) q[i * out + o] = Math.max(-qmax, Math.min(qmax, Math.round(w[o * inF + i]! / s)));
  }
  return { q, scale };
}

const CACHE = new WeakMap<Float32Array, QuantizedColumns>();

/** The quantized form of a weight array, computed once per array (sessions reading the same weights share it). */
export function quantizedOf(w: Float32Array, out: number, inF: number): QuantizedColumns {
  let c = CACHE.get(w);
  if (!c) CACHE.set(w, (c = quantizeColumns(w, out, inF)));
  return c;
}
