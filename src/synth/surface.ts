/**
 * Even sampling of an implicit surface: one point per grid cell of side `spacing` that the surface passes
 * through, found by octree refinement and then projected onto the zero set. The result is a near-uniform,
 * hole-free cover of the surface (≈ area / spacing² points), which is what opaque disc-shaped Gaussians need.
 */
import type { Rng } from './rng.ts';
import { sdfNormal, type Sdf, type Vec3 } from './sdf.ts';

export interface SurfaceSamples {
  count: number;
  /** xyz, length 3·count. */
  positions: Float64Array;
  /** unit outward normals, length 3·count. */
  normals: Float64Array;
}

export interface SurfaceOptions {
  /** Lower and upper corners of the region to search. */
  min: Vec3;
  max: Vec3;
  /** Grid spacing = average distance between neighbouring samples. */
  spacing: number;
  /** Sample only x ≥ 0 (the caller mirrors the result for symmetric shapes). */
  halfX?: boolean;
  /** Jitter of the cell centre before projection, as a fraction of `spacing` (hides the lattice). */
  jitter?: number;
  /** Keep a sample only if this returns true (e.g. "not hidden inside another layer"). */
  keep?: (x: number, y: number, z: number) => boolean;
}

/** Distance bounds of non-exact SDFs (ellipsoids, smooth unions) can be off by this factor. */
const SLACK = 1.6;
const PROJECT_STEPS = 2;
const SQRT3 = Math.sqrt(3);

export function sampleSurface(sdf: Sdf, rng: Rng, opts: SurfaceOptions): SurfaceSamples {
  const h = opts.spacing;
  if (!(h > 0)) throw new RangeError(`surface spacing must be positive, got ${h}`);
  const x0 = opts.halfX ? Math.max(0, opts.min[0]) : opts.min[0];
  const y0 = opts.min[1], z0 = opts.min[2];
  const span = Math.max(opts.max[0] - x0, opts.max[1] - y0, opts.max[2] - z0);
  // Root cell: the smallest power-of-two multiple of h that covers the region.
  let levels = 0;
  while (h * 2 ** levels < span) levels++;
  const jitter = (opts.jitter ?? 0.3) * h;
  const xMin = x0, xMax = opts.max[0];
  const yMax = opts.max[1], zMax = opts.max[2];

  let pos: number[] = [];
  let nrm: number[] = [];
  const n = new Float64Array(3);

  const visit = (cx: number, cy: number, cz: number, size: number, level: number): void => {
    // The cell [c, c+size)³; skip what lies outside the region.
    if (cx >= xMax || cy >= yMax || cz >= zMax) return;
    const half = size / 2;
    const mx = cx + half, my = cy + half, mz = cz + half;
    const d = sdf(mx, my, mz);
    if (level > 0) {
      if (Math.abs(d) > half * SQRT3 * SLACK) return; // half the cell diagonal, with slack
      for (let i = 0; i < 8; i++) {
        visit(cx + (i & 1 ? half : 0), cy + (i & 2 ? half : 0), cz + (i & 4 ? half : 0), half, level - 1);
      }
      return;
    }
    // Leaf: the surface crosses a slab of thickness h around the centre ⇒ ≈ one sample per area h². Distances are
    // divided by the gradient length, since non-exact SDFs (ellipsoid bounds, blends, profile solids) scale them.
    if (Math.abs(d) >= 2 * h) return;
    const g0 = sdfNormal(sdf, mx, my, mz, n);
    if (!(Math.abs(d) < half * g0)) return;
    let px = mx + (rng.next() - 0.5) * 2 * jitter;
    let py = my + (rng.next() - 0.5) * 2 * jitter;
    let pz = mz + (rng.next() - 0.5) * 2 * jitter;
    // Newton steps toward the zero set: p ← p − d·∇d/|∇d|² (the first reuses the centre's gradient).
    let dist = sdf(px, py, pz);
    let g = g0;
    for (let s = 0; s < PROJECT_STEPS; s++) {
      if (s > 0) {
        dist = sdf(px, py, pz);
        g = sdfNormal(sdf, px, py, pz, n);
      }
      const step = dist / Math.max(g, 0.1);
      px -= step * n[0];
      py -= step * n[1];
      pz -= step * n[2];
    }
    dist = sdf(px, py, pz);
    if (Math.abs(dist) > 0.05 * h * Math.max(g, 0.1)) return;
    if (Math.abs(px - mx) > 2 * h || Math.abs(py - my) > 2 * h || Math.abs(pz - mz) > 2 * h) return;
    if (px < xMin || px > xMax || py < y0 || py > yMax || pz < z0 || pz > zMax) return;
    if (opts.keep && !opts.keep(px, py, pz)) return;
    // The normal of the last Newton step, taken within |dist| of this point, is kept (saves 4 evaluations).
    pos.push(px, py, pz);
    nrm.push(n[0], n[1], n[2]);
  };
  visit(x0, y0, z0, h * 2 ** levels, levels);

  const out: SurfaceSamples = { count: pos.length / 3, positions: Float64Array.from(pos), normals: Float64Array.from(nrm) };
  pos = [];
  nrm = [];
  return out;
}
