/**
 * `generateHead(params)`: a procedural head as a GaussianSet. The skin/eye/clothing surface and the hair surface
 * are sampled evenly (one Gaussian per `spacing`² of area), each sample becomes a flat disc-shaped Gaussian lying
 * in the tangent plane (hair: a streak along the strand direction), coloured by region and baked lighting.
 * Shapes are mirror-symmetric, so only x ≥ 0 is sampled and mirrored; colours are evaluated per point, so
 * asymmetric parameters (parting, side light, noise) still show.
 */
import type { GaussianSet } from '../splat/gaussians.ts';
import { buildAnatomy, FRAMING, type Anatomy, type Landmarks } from './anatomy.ts';
import { GaussianBuilder } from './builder.ts';
import type { HeadParams } from './params.ts';
import { createRng } from './rng.ts';
import { clamp01, type Sdf, type Vec3 } from './sdf.ts';
import { bodyAlbedo, bodyGloss, hairAlbedo, lightOf, lit, occlusion, pointJitter } from './shading.ts';
import { sampleSurface, type SurfaceSamples } from './surface.ts';

export interface HeadOptions {
  /**
   * Average distance between neighbouring surface Gaussians in modelling units, i.e. before FRAMING scales the head
   * by 0.91 (default 0.0065: about 150–250 k Gaussians per head; a 512² view's pixel is ≈ 0.0049 world units at
   * the origin). Smaller = denser.
   */
  spacing?: number;
}

export interface Head {
  params: HeadParams;
  gaussians: GaussianSet;
  landmarks: Landmarks;
  /** Gaussians per layer. */
  counts: { body: number; hair: number; glasses: number };
}

export const DEFAULT_SPACING = 0.0065;
/**
 * Disc radius (standard deviation) relative to the sample spacing: neighbours overlap enough that a single layer
 * is opaque (at 0.62 a lone layer, e.g. the chest, let 2–7 % of the background through).
 */
const DISC_SIGMA = 0.75;
const DISC_THICKNESS = 0.2;
const SURFACE_OPACITY = 0.97;

export function generateHead(params: HeadParams, opts: HeadOptions = {}): Head {
  const spacing = opts.spacing ?? DEFAULT_SPACING;
  if (!(spacing >= 0.002 && spacing <= 0.05)) throw new RangeError(`spacing must be within [0.002, 0.05] world units, got ${spacing}`);
  const anat = buildAnatomy(params);
  const rng = createRng(params.seed).fork('surface');
  const s = params.shape.scale;
  const light = lightOf(params);
  const hair = anat.hair;
  const scene: Sdf = hair ? (x, y, z) => Math.min(anat.body(x, y, z), hair(x, y, z)) : anat.body;
  const out = new GaussianBuilder(200_000);

  // Skin, eyes and clothing, minus what lies under the hair.
  const bodyPts = mirrored(
    sampleSurface(anat.body, rng.fork('body'), {
      min: anat.min, max: anat.max, spacing, halfX: true,
      keep: hair ? (x, y, z) => hair(x, y, z) > -0.004 : undefined,
    }),
  );
  const rgb = new Float32Array(3);
  for (let i = 0; i < bodyPts.count; i++) {
    const [x, y, z, nx, ny, nz] = at(bodyPts, i);
    const albedo = bodyAlbedo(anat, params, x, y, z, nx, ny, nz);
    const ao = occlusion(scene, x, y, z, nx, ny, nz, s);
    lit(albedo, light, nx, ny, nz, ao, rgb, 0);
    const gloss = bodyGloss(anat, params, x, y, z);
    if (gloss > 0) {
      const ndl = Math.max(0, nx * light.dir[0] + ny * light.dir[1] + nz * light.dir[2]);
      const spec = gloss * ndl ** 12 * (1 - ao);
      for (let c = 0; c < 3; c++) rgb[c] = Math.min(1, rgb[c] + spec);
    }
    addDisc(out, x, y, z, nx, ny, nz, spacing * DISC_SIGMA, spacing * DISC_SIGMA, spacing * DISC_THICKNESS, null, rgb);
  }
  const nBody = out.count;

  if (hair) addHair(out, anat, params, hair, scene, spacing, rng.fork('hair'));
  const nHair = out.count - nBody;
  if (anat.glasses && params.glasses) addGlasses(out, anat, params, spacing);
  const nGlasses = out.count - nBody - nHair;

  const gaussians = out.build();
  frame(gaussians);
  const lm = anat.landmarks;
  const landmarks: Landmarks = {
    noseTip: framePoint(lm.noseTip), eyeRight: framePoint(lm.eyeRight), eyeLeft: framePoint(lm.eyeLeft),
    mouth: framePoint(lm.mouth), chin: framePoint(lm.chin), crown: framePoint(lm.crown),
  };
  return { params, gaussians, landmarks, counts: { body: nBody, hair: nHair, glasses: nGlasses } };
}

/** Moves a modelled head into place (FRAMING): scales positions and sizes, lowers it. */
function frame(g: GaussianSet): void {
  const k = FRAMING.scale, lk = Math.log(k);
  for (let i = 0; i < 3 * g.count; i++) {
    g.means[i] *= k;
    g.scales[i] += lk;
  }
  for (let i = 0; i < g.count; i++) g.means[3 * i + 2] += FRAMING.dz;
}

function framePoint(p: Vec3): Vec3 {
  return [p[0] * FRAMING.scale, p[1] * FRAMING.scale, p[2] * FRAMING.scale + FRAMING.dz];
}

/** Appends the mirror image (x → −x) of every sample with x > 0. */
function mirrored(src: SurfaceSamples): SurfaceSamples {
  const pos: number[] = [];
  const nrm: number[] = [];
  for (let i = 0; i < src.count; i++) {
    const x = src.positions[3 * i], y = src.positions[3 * i + 1], z = src.positions[3 * i + 2];
    const nx = src.normals[3 * i], ny = src.normals[3 * i + 1], nz = src.normals[3 * i + 2];
    pos.push(x, y, z);
    nrm.push(nx, ny, nz);
    if (x > 1e-6) {
      pos.push(-x, y, z);
      nrm.push(-nx, ny, nz);
    }
  }
  return { count: pos.length / 3, positions: Float64Array.from(pos), normals: Float64Array.from(nrm) };
}

function at(sm: SurfaceSamples, i: number): [number, number, number, number, number, number] {
  const p = sm.positions, n = sm.normals;
  return [p[3 * i], p[3 * i + 1], p[3 * i + 2], n[3 * i], n[3 * i + 1], n[3 * i + 2]];
}

/**
 * A flat Gaussian in the tangent plane of normal n. `along` (unit, tangent) orients the first axis; without it
 * any tangent is used (the disc is round in-plane then, so the choice is invisible).
 */
function addDisc(
  out: GaussianBuilder, x: number, y: number, z: number, nx: number, ny: number, nz: number,
  sa: number, sb: number, sn: number, along: Vec3 | null, rgb: Float32Array, opacity = SURFACE_OPACITY,
): void {
  let ax: number, ay: number, az: number;
  if (along) {
    [ax, ay, az] = along;
  } else if (Math.abs(nz) < 0.9) {
    ax = ny; ay = -nx; az = 0; // n × ẑ
  } else {
    ax = 0; ay = nz; az = -ny; // n × x̂
  }
  const la = Math.hypot(ax, ay, az);
  ax /= la; ay /= la; az /= la;
  // b = n × a completes a right-handed frame (a, b, n).
  const bx = ny * az - nz * ay, by = nz * ax - nx * az, bz = nx * ay - ny * ax;
  out.add(x, y, z, ax, ay, az, bx, by, bz, sa, sb, sn, opacity, rgb[0], rgb[1], rgb[2]);
}

function addHair(out: GaussianBuilder, anat: Anatomy, p: HeadParams, hair: Sdf, scene: Sdf, spacing: number, rng: ReturnType<typeof createRng>): void {
  const s = p.shape.scale;
  const h = spacing * 0.9;
  const pts = mirrored(
    sampleSurface(hair, rng, { min: anat.min, max: anat.max, spacing: h, halfX: true, keep: (x, y, z) => anat.body(x, y, z) > -0.004 }),
  );
  const light = lightOf(p);
  const crown = anat.landmarks.crown;
  const beard = anat.parts.beard;
  const part: Vec3 = [p.hair.partX * s, crown[1] - 0.25 * s, crown[2]];
  const rgb = new Float32Array(3);
  const dir: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < pts.count; i++) {
    const [x, y, z, nx, ny, nz] = at(pts, i);
    // Strands run away from the parting and, lower down, fall with gravity.
    const fall = 2.5 * clamp01((0.35 * s - z) / (0.5 * s));
    let dx = x - part[0], dy = y - part[1], dz = z - part[2] - fall;
    const dn = dx * nx + dy * ny + dz * nz;
    dx -= dn * nx; dy -= dn * ny; dz -= dn * nz;
    const l = Math.hypot(dx, dy, dz);
    let along: Vec3 | null = null;
    if (l > 1e-6) {
      dir[0] = dx / l; dir[1] = dy / l; dir[2] = dz / l;
      along = dir;
    }
    const jitter = pointJitter(x, y, z, p.seed + 17, p.symmetric);
    const albedo = hairAlbedo(p, x, y, z, jitter, beard !== null && beard(x, y, z) < 0.003);
    const ao = occlusion(scene, x, y, z, nx, ny, nz, s);
    lit(albedo, light, nx, ny, nz, ao, rgb, 0);
    // A soft sheen where the hair faces the light (baked, like the rest of the lighting).
    const ndl = Math.max(0, nx * light.dir[0] + ny * light.dir[1] + nz * light.dir[2]);
    const sheen = 0.16 * ndl ** 6 * (1 - ao);
    for (let c = 0; c < 3; c++) rgb[c] = Math.min(1, rgb[c] + sheen * (0.35 + albedo[c]));
    addDisc(out, x, y, z, nx, ny, nz, h * 2.0, h * 0.65, h * DISC_THICKNESS, along, rgb);
  }
}

function addGlasses(out: GaussianBuilder, anat: Anatomy, p: HeadParams, spacing: number): void {
  const g = p.glasses;
  if (!g || !anat.glasses) return;
  const s = p.shape.scale;
  const light = lightOf(p);
  const sigma = g.thickness * 0.5 * s;
  const step = sigma * 0.6;
  const rgb = new Float32Array(3);
  const frame = (x: number, y: number, z: number): void => {
    lit(g.frameColour, light, 0, -1, 0, 0, rgb, 0);
    for (const sx of x > 1e-6 ? [1, -1] : [1]) out.add(sx * x, y, z, 1, 0, 0, 0, 1, 0, sigma, sigma, sigma, 0.95, rgb[0], rgb[1], rgb[2]);
  };
  const [c] = anat.glasses.rimCentres;
  const W = g.halfWidth * s, H = g.halfHeight * s, q = g.squareness;
  const wrap = 0.05 * s; // rims curve back slightly toward the temples
  const rim = (t: number): Vec3 => {
    const ct = Math.cos(t), st = Math.sin(t);
    const u = Math.sign(ct) * Math.abs(ct) ** (2 / q);
    const v = Math.sign(st) * Math.abs(st) ** (2 / q);
    return [c[0] + W * u, c[1] + wrap * ((u + 1) / 2) ** 2, c[2] + H * v];
  };
  // Rim: walk the superellipse with steps of about `step` arc length.
  let t = 0;
  while (t < 2 * Math.PI) {
    const a = rim(t);
    frame(a[0], a[1], a[2]);
    const b = rim(t + 1e-3);
    const ds = Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]) / 1e-3;
    t += step / Math.max(ds, 1e-6);
  }
  // Bridge between the rims (symmetric: sample x ≥ 0), arching over the nose.
  const inner = rim(Math.PI * 0.97);
  const zTop = c[2] + H * 0.35;
  for (let x = 0; x <= inner[0]; x += step) {
    const u = x / inner[0];
    frame(x, inner[1] - 0.012 * s * (1 - u * u), zTop + 0.012 * s * (1 - u * u));
  }
  // Temples from the outer rim edge back to the ears.
  const outer = rim(0.12);
  const end = anat.glasses.templeEnds[0];
  const len = Math.hypot(end[0] - outer[0], end[1] - outer[1], end[2] - outer[2]);
  for (let d = 0; d <= len; d += step) {
    const u = d / len;
    frame(outer[0] + (end[0] - outer[0]) * u, outer[1] + (end[1] - outer[1]) * u, outer[2] + (end[2] - outer[2]) * u);
  }
  // Dark lenses for sunglasses: flat discs filling the rims.
  if (g.sunglasses) {
    const hs = spacing * 1.1;
    lit([0.06, 0.06, 0.07], light, 0, -1, 0, 0, rgb, 0);
    for (let x = c[0] - W; x <= c[0] + W; x += hs) {
      for (let z = c[2] - H; z <= c[2] + H; z += hs) {
        const u = Math.abs((x - c[0]) / W), v = Math.abs((z - c[2]) / H);
        if (u ** q + v ** q > 0.97) continue;
        const uy = (x - c[0]) / W;
        const y = c[1] + wrap * ((uy + 1) / 2) ** 2 + 0.002 * s;
        for (const sx of [1, -1]) {
          out.add(sx * x, y, z, 1, 0, 0, 0, 0, 1, hs * 0.7, hs * 0.7, hs * 0.15, 0.85, rgb[0], rgb[1], rgb[2]);
        }
      }
    }
  }
}
