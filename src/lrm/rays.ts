/**
 * GS-LRM input encoding (spec gslrm.md §2): per-pixel camera rays and the 9-channel posed image
 * `[rgb·2−1 | d | o + (−o·d)·d]`. Computed in float64 and stored as float32, so the result is the correctly
 * rounded value of the reference formula.
 */
import type { Camera } from '../cameras/camera.ts';

export interface Rays {
  views: number;
  height: number;
  width: number;
  /** Ray origins (camera centres), [V, 3]. */
  origins: Float64Array;
  /** Unit world-space ray directions, [V, 3, H, W] (channel-major, as the model's tensors). */
  directions: Float32Array;
}

/** Rays through every pixel centre (x + 0.5, y + 0.5) of each camera. All cameras must share one image size. */
export function computeRays(cameras: readonly Camera[]): Rays {
  if (cameras.length === 0) throw new RangeError('computeRays needs at least one camera');
  const { width: W, height: H } = cameras[0];
  const V = cameras.length;
  const origins = new Float64Array(3 * V);
  const directions = new Float32Array(V * 3 * H * W);
  const plane = H * W;
  cameras.forEach((cam, v) => {
    if (cam.width !== W || cam.height !== H) {
      throw new RangeError(`camera ${v} is ${cam.width}×${cam.height}, camera 0 is ${W}×${H}; all views must have one size`);
    }
    const m = cam.c2w;
    origins.set([m[3], m[7], m[11]], 3 * v);
    const base = v * 3 * plane;
    for (let y = 0; y < H; y++) {
      const cy = (y + 0.5 - cam.cy) / cam.fy;
      for (let x = 0; x < W; x++) {
        const cx = (x + 0.5 - cam.cx) / cam.fx;
        // Camera-space direction normalised first, then rotated and normalised again, as the reference does.
        const n = Math.hypot(cx, cy, 1);
        const a = cx / n, b = cy / n, c = 1 / n;
        let dx = m[0] * a + m[1] * b + m[2] * c;
        let dy = m[4] * a + m[5] * b + m[6] * c;
        let dz = m[8] * a + m[9] * b + m[10] * c;
        const k = Math.hypot(dx, dy, dz);
        dx /= k; dy /= k; dz /= k;
        const i = y * W + x;
        directions[base + i] = dx;
        directions[base + plane + i] = dy;
        directions[base + 2 * plane + i] = dz;
      }
    }
  });
  return { views: V, height: H, width: W, origins, directions };
}

/**
 * The 9-channel posed input [V, 9, H, W] from RGB images [V, 3, H, W] in [0, 1] and their rays:
 * rgb·2−1, the ray direction d, and p⊥ = o + (−o·d)·d, the point of the ray closest to the world origin.
 */
export function posedInput(images: Float32Array, rays: Rays): Float32Array {
  const { views: V, height: H, width: W, origins, directions } = rays;
  const plane = H * W;
  if (images.length !== V * 3 * plane) {
    throw new RangeError(`images have ${images.length} values, expected ${V}×3×${H}×${W} = ${V * 3 * plane}`);
  }
  const out = new Float32Array(V * 9 * plane);
  for (let v = 0; v < V; v++) {
    const [ox, oy, oz] = [origins[3 * v], origins[3 * v + 1], origins[3 * v + 2]];
    const src = v * 3 * plane;
    const dst = v * 9 * plane;
    for (let i = 0; i < plane; i++) {
      const dx = directions[src + i], dy = directions[src + plane + i], dz = directions[src + 2 * plane + i];
      const t = -(ox * dx + oy * dy + oz * dz);
      out[dst + i] = images[src + i] * 2 - 1;
      out[dst + plane + i] = images[src + plane + i] * 2 - 1;
      out[dst + 2 * plane + i] = images[src + 2 * plane + i] * 2 - 1;
      out[dst + 3 * plane + i] = dx;
      out[dst + 4 * plane + i] = dy;
      out[dst + 5 * plane + i] = dz;
      out[dst + 6 * plane + i] = ox + t * dx;
      out[dst + 7 * plane + i] = oy + t * dy;
      out[dst + 8 * plane + i] = oz + t * dz;
    }
  }
  return out;
}
