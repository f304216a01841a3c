/**
 * Spatial ordering of a Gaussian set. Compositing reads the Gaussians of a tile in depth order; when neighbouring
 * Gaussians are also neighbours in memory those reads hit the cache. A Morton (Z-order) sort of the means, done
 * once per scene, gives that. Rendering is unchanged except for the order of exactly equal depths.
 */
import { allocGaussians, shCoeffs, type GaussianSet } from './gaussians.ts';

/** Spreads the low 10 bits of v to every third bit. */
function spread3(v: number): number {
  v &= 0x3ff;
  v = (v | (v << 16)) & 0x030000ff;
  v = (v | (v << 8)) & 0x0300f00f;
  v = (v | (v << 4)) & 0x030c30c3;
  v = (v | (v << 2)) & 0x09249249;
  return v;
}

/** A permutation (new position → old index) sorting the means along a 30-bit Morton curve; stable. */
export function mortonOrder(means: Float32Array, count: number): Int32Array {
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < 3; k++) {
      const v = means[3 * i + k];
      if (v < lo[k]) lo[k] = v;
      if (v > hi[k]) hi[k] = v;
    }
  }
  const sc = lo.map((l, k) => (hi[k] > l ? 1023 / (hi[k] - l) : 0));
  const code = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const q = (k: number) => Math.min(1023, Math.max(0, Math.floor((means[3 * i + k] - lo[k]) * sc[k])));
    code[i] = (spread3(q(0)) | (spread3(q(1)) << 1) | (spread3(q(2)) << 2)) >>> 0;
  }
  // LSD radix sort, 3 passes of 10 bits.
  let idx = new Int32Array(count), tmp = new Int32Array(count);
  for (let i = 0; i < count; i++) idx[i] = i;
  const hist = new Int32Array(1024);
  for (let shift = 0; shift < 30; shift += 10) {
    hist.fill(0);
    for (let i = 0; i < count; i++) hist[(code[idx[i]] >>> shift) & 1023]++;
    let sum = 0;
    for (let b = 0; b < 1024; b++) { const c = hist[b]; hist[b] = sum; sum += c; }
    for (let i = 0; i < count; i++) { const j = idx[i]; tmp[hist[(code[j] >>> shift) & 1023]++] = j; }
    const t = idx; idx = tmp; tmp = t;
  }
  return idx;
}

/** The set reordered by `perm` (new position j holds old Gaussian perm[j]); `shared` puts it in SharedArrayBuffers. */
export function permuteGaussians(g: GaussianSet, perm: Int32Array, shared = false): GaussianSet {
  const out = shared ? sharedGaussians(g.count, g.shDegree) : allocGaussians(g.count, g.shDegree);
  const S = 3 * shCoeffs(g.shDegree);
  for (let j = 0; j < perm.length; j++) {
    const i = perm[j];
    for (let k = 0; k < 3; k++) { out.means[3 * j + k] = g.means[3 * i + k]; out.scales[3 * j + k] = g.scales[3 * i + k]; }
    for (let k = 0; k < 4; k++) out.rotations[4 * j + k] = g.rotations[4 * i + k];
    out.opacities[j] = g.opacities[i];
    for (let k = 0; k < S; k++) out.sh[S * j + k] = g.sh[S * i + k];
  }
  return out;
}

function sharedGaussians(count: number, shDegree: number): GaussianSet {
  const f = (n: number) => new Float32Array(new SharedArrayBuffer(4 * n));
  return {
    count, shDegree, means: f(3 * count), scales: f(3 * count), rotations: f(4 * count), opacities: f(count),
    sh: f(3 * shCoeffs(shDegree) * count),
  };
}

/** Scatters per-Gaussian rows of `a` (stride `s`, in permuted order) back to the original order. */
export function unpermute(a: Float32Array, perm: Int32Array, s: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let j = 0; j < perm.length; j++) for (let k = 0; k < s; k++) out[s * perm[j] + k] = a[s * j + k];
  return out;
}
