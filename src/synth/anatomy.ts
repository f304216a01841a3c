/**
 * Head shape as signed-distance functions: skull and face masses blended together, deformed by jaw, chin,
 * cheek and brow terms, with nose, lips, ears, eyes, neck and shoulders attached; a separate hair volume per
 * style. Features are placed relative to the surface they sit on (found by marching the face SDF), so that
 * shape parameters never leave a nose floating or an eye buried.
 */
import type { HeadParams } from './params.ts';
import { valueNoise } from './shading.ts';
import {
  ellipsoid, ellipticCylinder, mulMat3, profileSolid, sphereBound, rotX, rotY, rotZ, roundCone, smax, smin, smoothstep, sphere,
  type ProfileRow, type Sdf, type Vec3,
} from './sdf.ts';

export interface Landmarks {
  noseTip: Vec3;
  eyeRight: Vec3;
  eyeLeft: Vec3;
  mouth: Vec3;
  chin: Vec3;
  crown: Vec3;
}

export interface Anatomy {
  /** Everything that is skin, eye or clothing: the opaque body surface. */
  body: Sdf;
  /** Hair volume, or null when bald. */
  hair: Sdf | null;
  /** Parts the shader asks about (distances, negative inside). */
  parts: {
    eyes: Sdf;
    lips: Sdf;
    mouthSlit: Sdf;
    eyeOpenings: Sdf;
    ears: Sdf;
    nose: Sdf;
    /** Facial hair volume (also part of `hair`), or null. */
    beard: Sdf | null;
  };
  eyeCentres: readonly [Vec3, Vec3];
  eyeRadius: number;
  cheekCentres: readonly [Vec3, Vec3];
  landmarks: Landmarks;
  /** Glasses geometry, when worn: rim centres, rim plane y, temple end points. */
  glasses: null | { rimCentres: readonly [Vec3, Vec3]; templeEnds: readonly [Vec3, Vec3] };
  /** The region sampled, in modelling coordinates: FaceLift's crop box before FRAMING. */
  min: Vec3;
  max: Vec3;
}

/** The crop box of the reconstruction filters (pipeline.md §6.1), shrunk slightly so nothing sits on it. */
/** Highest point of any surface: the crop box top (1.0) less a margin for Gaussian extent. */
const TOP = 0.975;
/** Largest |x| and y of hair: the crop box side (0.91) less a margin. */
const SIDE_LIMIT = 0.87;

export const SAFE_BOX = { min: [-0.9, -0.9, -0.99] as Vec3, max: [0.9, 0.9, 0.99] as Vec3 };

/**
 * Where the modelled head goes in the world: x' = scale·x, z' = scale·z + dz (and y' = scale·y). Fitted so that
 * face boxes on the front views (face-api SSD, calibrated to MTCNN by src/preprocess) average FaceLift's crop
 * statistics — side ≈ 194 px, centre ≈ (252, 280) at 512² (pipeline.md §3) — as that crop is what inference
 * applies to a photo before the multi-view model sees it.
 */
export const FRAMING = { scale: 0.91, dz: -0.073 } as const;

/** SAFE_BOX mapped back into modelling coordinates (the region to sample so that the framed head fills it). */
function modelBox(): { min: Vec3; max: Vec3 } {
  const k = FRAMING.scale, dz = FRAMING.dz;
  return {
    min: [SAFE_BOX.min[0] / k, SAFE_BOX.min[1] / k, (SAFE_BOX.min[2] - dz) / k],
    max: [SAFE_BOX.max[0] / k, SAFE_BOX.max[1] / k, (SAFE_BOX.max[2] - dz) / k],
  };
}

/** y of the first surface point met walking from the front (y = −1.2) toward +y at (x, z). */
export function frontY(f: Sdf, x: number, z: number): number {
  let lo = -1.2;
  if (f(x, lo, z) <= 0) return lo;
  let hi = lo;
  while (hi < 1.2) {
    hi += 0.02;
    if (f(x, hi, z) <= 0) break;
  }
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if (f(x, mid, z) > 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Highest z of a surface near the z axis (|x| ≤ 0.02, y scanned over the head's depth). */
export function topZ(f: Sdf): number {
  let top = -Infinity;
  for (let y = -0.4; y <= 0.6; y += 0.05) top = Math.max(top, -frontY((a, b, c) => f(a, c, -b), 0, y));
  return top;
}

/** Largest y (back) or |x| (side) reached by a surface over the head's height range. */
export function extent(f: Sdf, which: 'back' | 'side'): number {
  let m = -Infinity;
  for (let z = -0.4; z <= 0.8; z += 0.05) m = Math.max(m, which === 'back' ? -frontY((a, b, c) => f(a, -b, c), 0, z) : sideX(f, 0.1, z));
  return m;
}

/** x of the first surface point met walking from x = +1.2 toward −x at (y, z). */
export function sideX(f: Sdf, y: number, z: number): number {
  const g: Sdf = (a, b, c) => f(-b, a, c);
  return -frontY(g, y, z);
}

export function buildAnatomy(p: HeadParams): Anatomy {
  const s = p.shape.scale;
  const sh = p.shape;

  // ---- Cranium and face masses -------------------------------------------------------------------------
  const skull = ellipsoid([0, 0.07 * s, 0.30 * s], [0.455 * s * sh.skullWidth, 0.575 * s * sh.skullDepth, 0.56 * s * sh.skullHeight]);
  // Face and jaw by their silhouettes: half-width, front and back at each height (world units at scale 1).
  const fl = (z: number): number => (z < 0.1 ? 0.1 + (z - 0.1) * sh.faceLength : z) * s;
  const fw = sh.faceWidth * s;
  const cp = 0.03 * (sh.chinProtrusion - 1);
  const cf = 0.04 * (sh.cheekFullness - 1);
  const rows: ProfileRow[] = [
    { z: 0.46, halfWidth: 0.30, yFront: -0.38, yBack: 0.42 }, // tucked inside the skull
    { z: 0.30, halfWidth: 0.42, yFront: -0.47, yBack: 0.56 },
    { z: 0.18, halfWidth: 0.465, yFront: -0.52, yBack: 0.62 },
    { z: 0.05, halfWidth: 0.47, yFront: -0.50, yBack: 0.56 },
    { z: -0.10, halfWidth: 0.455 + cf, yFront: -0.50 - cf, yBack: 0.46 },
    { z: -0.25, halfWidth: 0.42 * (0.5 + 0.5 * sh.jawWidth) + cf, yFront: -0.49 - cf, yBack: 0.30 },
    { z: -0.38, halfWidth: 0.36 * sh.jawWidth, yFront: -0.475 - cp * 0.5, yBack: 0.12 },
    { z: -0.48, halfWidth: 0.22 * sh.chinWidth, yFront: -0.47 - cp, yBack: -0.06 },
    { z: -0.56, halfWidth: 0.10 * sh.chinWidth, yFront: -0.40 - cp, yBack: -0.22 },
  ].reverse().map((r) => ({ z: fl(r.z), halfWidth: r.halfWidth * fw, yFront: r.yFront * s, yBack: r.yBack * s }));
  const face = profileSolid(rows, 2.5, 2);
  const chin = ellipsoid([0, (-0.43 - cp) * s, fl(-0.47)], [0.09 * s * sh.chinWidth, 0.05 * s, 0.06 * s]);
  const cheekC: Vec3 = [0.22 * s, -0.38 * s, fl(-0.12)];
  const cheekR = [0.14 * s * sh.cheekFullness, 0.10 * s * sh.cheekFullness, 0.12 * s] as const;
  const cheekRt = ellipsoid([cheekC[0], cheekC[1], cheekC[2]], [cheekR[0], cheekR[1], cheekR[2]]);
  const cheekLt = ellipsoid([-cheekC[0], cheekC[1], cheekC[2]], [cheekR[0], cheekR[1], cheekR[2]]);
  const boneR = ellipsoid([0.28 * s, -0.32 * s, 0.03 * s], [0.12 * s, 0.13 * s, 0.06 * s]);
  const boneL = ellipsoid([-0.28 * s, -0.32 * s, 0.03 * s], [0.12 * s, 0.13 * s, 0.06 * s]);
  const brow = ellipsoid([0, -0.45 * s, (p.eyes.height + 0.085) * s], [0.33 * s, 0.10 * s * Math.max(0.5, sh.browRidge), 0.07 * s]);
  const ex = p.eyes.halfSpacing * s;
  const ez = p.eyes.height * s;
  const socketR = ellipsoid([ex, -0.58 * s, ez], [0.10 * s, 0.10 * s, 0.07 * s]);
  const socketL = ellipsoid([-ex, -0.58 * s, ez], [0.10 * s, 0.10 * s, 0.07 * s]);

  const head: Sdf = (x, y, z) => {
    let d = smin(skull(x, y, z), face(x, y, z), 0.08 * s);
    d = smin(d, chin(x, y, z), 0.06 * s);
    d = smin(d, smin(cheekRt(x, y, z), cheekLt(x, y, z), 0.01), 0.10 * s);
    d = smin(d, smin(boneR(x, y, z), boneL(x, y, z), 0.01), 0.08 * s);
    d = smin(d, brow(x, y, z), 0.10 * s);
    d = smax(d, -Math.min(socketR(x, y, z), socketL(x, y, z)), 0.06 * s);
    return d;
  };

  // ---- Nose ----------------------------------------------------------------------------------------------
  const nz0 = ez + 0.015 * s;
  const tipZ = ez - 0.245 * s * p.nose.length;
  const rootY = frontY(head, 0, nz0) + 0.035 * s;
  const tipY = frontY(head, 0, tipZ) - 0.15 * s * p.nose.protrusion;
  const tipR = 0.05 * s * p.nose.tipSize;
  const bridge = roundCone([0, rootY, nz0], [0, tipY + tipR, tipZ + 0.01 * s], 0.036 * s * p.nose.bridgeWidth, tipR);
  const alaX = 0.058 * s * p.nose.width;
  const alaR = 0.042 * s * p.nose.width;
  const alaY = tipY + tipR + 0.055 * s;
  const alaZ = tipZ - 0.015 * s;
  const alaRt = sphere([alaX, alaY, alaZ], alaR);
  const alaLt = sphere([-alaX, alaY, alaZ], alaR);
  const nose: Sdf = (x, y, z) => smin(bridge(x, y, z), Math.min(alaRt(x, y, z), alaLt(x, y, z)), 0.03 * s);

  // ---- Lips and mouth ------------------------------------------------------------------------------------
  const mouthZ = tipZ - 0.135 * s;
  const mouthY = frontY(head, 0, mouthZ);
  const lw = 0.12 * s * p.lips.width;
  // A smile lifts the mouth corners (and draws them back a little): a warp of the lips' coordinates.
  const lift = 0.024 * s * p.lips.smile;
  const smile = (f: Sdf): Sdf => (x, y, z) => {
    const u = Math.min(1.3, Math.abs(x) / lw);
    return f(x, y - 0.4 * lift * u * u, z - lift * u * u);
  };
  const upper = ellipsoid([0, mouthY + 0.026 * s, mouthZ + 0.022 * s], [lw, 0.055 * s, 0.021 * s * p.lips.upper], rotX(-18));
  const lower = ellipsoid([0, mouthY + 0.030 * s, mouthZ - 0.026 * s], [lw * 0.9, 0.055 * s, 0.024 * s * p.lips.lower], rotX(15));
  const lips: Sdf = smile((x, y, z) => smin(upper(x, y, z), lower(x, y, z), 0.01 * s));
  const slit = smile(ellipsoid([0, mouthY - 0.035 * s, mouthZ], [lw * 0.98, 0.045 * s, 0.005 * s]));

  // ---- Eyes ----------------------------------------------------------------------------------------------
  const er = p.eyes.radius * s;
  const eyeSurfY = frontY(head, ex, ez);
  const eyeY = eyeSurfY + er - 0.012 * s;
  const eyeCR: Vec3 = [ex, eyeY, ez];
  const eyeCL: Vec3 = [-ex, eyeY, ez];
  const eyeR = sphere(eyeCR, er);
  const eyeL = sphere(eyeCL, er);
  const openW = 0.085 * s;
  const openH = 0.030 * s * p.eyes.openness;
  const openR = ellipsoid([ex, eyeY - er, ez + 0.004 * s], [openW, 0.05 * s, openH], rotY(p.eyes.tiltDeg));
  const openL = ellipsoid([-ex, eyeY - er, ez + 0.004 * s], [openW, 0.05 * s, openH], rotY(-p.eyes.tiltDeg));
  const openings: Sdf = (x, y, z) => Math.min(openR(x, y, z), openL(x, y, z));
  const eyes: Sdf = (x, y, z) => Math.min(eyeR(x, y, z), eyeL(x, y, z));

  // ---- Ears ----------------------------------------------------------------------------------------------
  const earZ = 0.02 * s + ez - 0.1 * s;
  const earY = 0.07 * s;
  const earX = sideX(head, earY, earZ);
  const es = p.ears.size * s;
  const earRot = mulMat3(rotZ(-p.ears.protrusionDeg), rotX(-12));
  const earRotL = mulMat3(rotZ(p.ears.protrusionDeg), rotX(-12));
  const earOuterR = ellipsoid([earX + 0.012 * s, earY, earZ], [0.035 * es, 0.105 * es, 0.175 * es], earRot);
  const earOuterL = ellipsoid([-earX - 0.012 * s, earY, earZ], [0.035 * es, 0.105 * es, 0.175 * es], earRotL);
  const conchaR = ellipsoid([earX + 0.05 * es, earY - 0.008 * es, earZ - 0.01 * es], [0.03 * es, 0.065 * es, 0.12 * es], earRot);
  const conchaL = ellipsoid([-earX - 0.05 * es, earY - 0.008 * es, earZ - 0.01 * es], [0.03 * es, 0.065 * es, 0.12 * es], earRotL);
  const ears: Sdf = (x, y, z) => {
    const r = x >= 0 ? smax(earOuterR(x, y, z), -conchaR(x, y, z), 0.012 * s) : smax(earOuterL(x, y, z), -conchaL(x, y, z), 0.012 * s);
    return r;
  };

  // ---- Neck and shoulders ----------------------------------------------------------------------------------
  const nw = 0.31 * s * p.neck.width;
  const neck = ellipticCylinder(0, 0.06 * s, nw, nw * 0.92, -1.4, 0.1 * s);
  const torso = ellipsoid([0, 0.08 * s, -1.28], [1.06 * Math.min(1.04, p.shoulders.width), 0.38, 0.56]);

  // Bounding spheres of the small features: a feature whose bound is farther than the blend width cannot change
  // the result, so it is not evaluated (the sampler calls this millions of times).
  const noseFar = sphereBound(0, (rootY + tipY) / 2, (nz0 + tipZ) / 2, Math.hypot(rootY - tipY, nz0 - tipZ) / 2 + 0.12 * s);
  const mouthFar = sphereBound(0, mouthY, mouthZ, lw + 0.08 * s);
  const eyeFar = (x: number, y: number, z: number): number => Math.hypot(Math.abs(x) - ex, y - (eyeY - er), z - ez) - (openW + 2 * er + 0.03 * s);
  const earFar = (x: number, y: number, z: number): number => Math.hypot(Math.abs(x) - earX, y - earY, z - earZ) - (0.22 * es + 0.06 * s);
  const kNose = 0.035 * s, kLips = 0.018 * s, kSlit = 0.006 * s, kOpen = 0.012 * s, kEar = 0.02 * s;

  const body: Sdf = (x, y, z) => {
    let d = head(x, y, z);
    if (noseFar(x, y, z) < d + kNose) d = smin(d, nose(x, y, z), kNose);
    const m = mouthFar(x, y, z);
    if (m < d + kLips) d = smin(d, lips(x, y, z), kLips);
    if (m < kSlit - d) d = smax(d, -slit(x, y, z), kSlit);
    const e = eyeFar(x, y, z);
    if (e < kOpen - d) d = smax(d, -openings(x, y, z), kOpen);
    if (earFar(x, y, z) < d + kEar) d = smin(d, ears(x, y, z), kEar);
    d = smin(d, smin(neck(x, y, z), torso(x, y, z), 0.22), 0.12 * s);
    d = smax(d, z - TOP, 0.02); // only the tallest skulls are touched: keeps the crown inside the crop box
    return e < d ? Math.min(d, eyes(x, y, z)) : d;
  };

  // ---- Hair ----------------------------------------------------------------------------------------------
  // Big hair is thinned until it stays inside the crop box behind and beside the head (the offset surface of a
  // non-exact SDF can reach farther than its nominal thickness, so this is measured, not computed).
  const hairAt = { earX, earY, earZ, eyeZ: ez };
  let hairT = p.hair.thickness;
  let scalp = buildHair(p, head, hairAt, hairT);
  for (let k = 0; k < 8 && scalp && Math.max(extent(scalp, 'back'), extent(scalp, 'side')) > SIDE_LIMIT; k++) {
    hairT *= 0.8;
    scalp = buildHair(p, head, hairAt, hairT);
  }
  const beard = buildBeard(p, head, { mouthY, mouthZ, lipHalfWidth: lw, noseBaseZ: alaZ, earY, earZ });
  const hairShape: Sdf | null = scalp && beard ? (x, y, z) => Math.min(scalp(x, y, z), beard(x, y, z)) : scalp ?? beard;
  const hair: Sdf | null = hairShape && ((x, y, z) => smax(hairShape(x, y, z), z - TOP, 0.04));

  // ---- Landmarks -----------------------------------------------------------------------------------------
  const noseTipY = frontY(body, 0, tipZ);
  const chinZ = fl(-0.53);
  const landmarks: Landmarks = {
    noseTip: [0, noseTipY, tipZ],
    eyeRight: [-ex, eyeY - er, ez],
    eyeLeft: [ex, eyeY - er, ez],
    mouth: [0, frontY(body, 0, mouthZ), mouthZ],
    chin: [0, frontY(body, 0, chinZ), chinZ],
    crown: [0, 0.07 * s, 0.30 * s + 0.56 * s * sh.skullHeight],
  };

  const glasses = p.glasses
    ? {
        rimCentres: [[ex, eyeY - er - 0.07 * s, ez], [-ex, eyeY - er - 0.07 * s, ez]] as const,
        templeEnds: [[earX - 0.005, earY - 0.02 * s, earZ + 0.13 * es], [-earX + 0.005, earY - 0.02 * s, earZ + 0.13 * es]] as const,
      }
    : null;

  return {
    body,
    hair,
    parts: { eyes, lips, mouthSlit: slit, eyeOpenings: openings, ears, nose, beard },
    eyeCentres: [eyeCR, eyeCL],
    eyeRadius: er,
    cheekCentres: [[cheekC[0], cheekC[1] - 0.08 * s, cheekC[2]], [-cheekC[0], cheekC[1] - 0.08 * s, cheekC[2]]],
    landmarks,
    glasses,
    ...modelBox(),
  };
}

/** The hair volume of each style: a shell over the skull cut at a hairline, plus style-specific masses. */
function buildHair(p: HeadParams, head: Sdf, at: { earX: number; earY: number; earZ: number; eyeZ: number }, thickness: number): Sdf | null {
  const h = p.hair;
  if (h.style === 'bald') return null;
  const s = p.shape.scale;
  const sh = p.shape;
  const t = thickness;
  // A shell of thickness t over the head (fuller on top), so the hair follows whatever skull the head has.
  // Fuller on top, but never above the crop box: the top thickness shrinks to what is left under TOP.
  const skullTop = topZ(head);
  const tTop = Math.max(0.01, Math.min(t * 1.4, TOP - 0.01 - skullTop));
  const cap: Sdf = (x, y, z) => head(x, y, z) - (t + (tTop - t) * smoothstep(0.3 * s, 0.8 * s, z));
  // Hairline: a plane rising from the nape (back, low) to the forehead (front, high).
  const front = h.hairline * s;
  const nape = -0.22 * s;
  const slope = (front - nape) / (1.1 * s);
  const hairline = (x: number, y: number, z: number): number => {
    // Distance below the plane z = nape + slope·(0.55·s − y), normalised.
    const zLine = nape + slope * (0.55 * s - y);
    return (zLine - z) / Math.sqrt(1 + slope * slope);
  };
  // Keep hair off the ears for short styles.
  const earClear = (x: number, y: number, z: number): number =>
    Math.hypot((Math.abs(x) - at.earX) / 1.4, y - at.earY, (z - at.earZ) / 1.3) - 0.17 * s;

  if (h.style === 'short' || h.style === 'bun' || h.style === 'ponytail') {
    const bun = h.style === 'bun' ? sphere([0, 0.50 * s * sh.skullDepth, 0.62 * s * sh.skullHeight], 0.16 * s) : null;
    // A ponytail: a tapered tail from a tie at the back of the head, hanging down and slightly away.
    const tieY = 0.58 * s * sh.skullDepth, tieZ = 0.45 * s;
    const tail = h.style === 'ponytail'
      ? roundCone([0, tieY + 0.04 * s, tieZ], [0, Math.min(0.8, tieY + 0.2 * s), h.endZ], 0.1 * s, 0.05 * s)
      : null;
    return (x, y, z) => {
      let d = smax(cap(x, y, z), hairline(x, y, z), 0.03 * s);
      d = smax(d, -earClear(x, y, z), 0.03 * s);
      if (bun) d = smin(d, bun(x, y, z), 0.06 * s);
      if (tail) d = smin(d, tail(x, y, z), 0.05 * s);
      return d;
    };
  }
  if (h.style === 'afro') {
    // A big rounded volume with a curly (bumpy) surface; it covers the ears.
    const seed = p.seed;
    const faceCut = ellipticCylinder(0, -0.52 * s, 0.4 * s * sh.faceWidth, 0.58 * s, -2, at.eyeZ + 0.22 * s);
    return (x, y, z) => {
      // Like the long styles the volume reaches down the sides and back (to about the jaw), clear of the face;
      // wide blends round its lower edge.
      const drop = 0.3 * s * smoothstep(-0.35 * s, 0.05 * s, y);
      let d = smax(cap(x, y, z), hairline(x, y, z) - drop, 0.1 * s);
      d = smax(d, -faceCut(x, y, z), 0.08 * s);
      d = smax(d, -0.22 * s - z, 0.12 * s);
      return d > 0.05 ? d : d + 0.014 * s * (valueNoise(x * 28, y * 28, z * 28, seed + 31) - 0.5);
    };
  }
  // bob / long: the cap plus a curtain that falls behind and beside the face to endZ.
  const endZ = h.endZ;
  const curtainTop = 0.35 * s;
  // Hair falls from the widest part of the head, narrowing a little toward the ends.
  const w = 0.5 * s * sh.skullWidth + t + (h.style === 'long' ? 0.03 : 0);
  const yb = 0.6 * s * sh.skullDepth + t;
  const curtain = profileSolid([
    { z: endZ - 0.03, halfWidth: w * 0.8, yFront: -0.22 * s, yBack: yb * 0.85 },
    { z: (endZ + curtainTop) / 2, halfWidth: w * 0.93, yFront: -0.3 * s, yBack: yb * 0.97 },
    { z: curtainTop, halfWidth: w, yFront: -0.36 * s, yBack: yb },
    { z: curtainTop + 0.2 * s, halfWidth: w * 0.75, yFront: -0.25 * s, yBack: yb * 0.75 }, // tucks under the cap
  ], 2.2, 2.2);
  const faceCut = ellipticCylinder(0, -0.52 * s, 0.37 * s * sh.faceWidth, 0.58 * s, -2, at.eyeZ + 0.22 * s);
  const flat = (z: number): number => endZ - z; // cut the ends straight
  return (x, y, z) => {
    // The hairline keeps its height over the forehead and drops at the sides and back, where the curtain hangs.
    const drop = 0.3 * s * smoothstep(-0.35 * s, 0.05 * s, y);
    let d = smax(cap(x, y, z), hairline(x, y, z) - drop, 0.05 * s);
    d = smin(d, curtain(x, y, z), 0.1 * s);
    d = smax(d, -faceCut(x, y, z), 0.05 * s);
    d = smax(d, flat(z), 0.02);
    return d;
  };
}

/**
 * Facial hair as a shell over the lower face: a moustache over the upper lip, a goatee on the chin (with the
 * moustache), or a full beard along the jaw up to the sideburns; the mouth stays clear.
 */
function buildBeard(
  p: HeadParams, head: Sdf,
  at: { mouthY: number; mouthZ: number; lipHalfWidth: number; noseBaseZ: number; earY: number; earZ: number },
): Sdf | null {
  const b = p.beard;
  if (!b) return null;
  const s = p.shape.scale;
  const t = b.thickness;
  const { mouthY, mouthZ, lipHalfWidth: lw } = at;
  const shell: Sdf = (x, y, z) => head(x, y, z) - t;
  const mouth = ellipsoid([0, mouthY, mouthZ - 0.004 * s], [lw + 0.012 * s, 0.2 * s, 0.036 * s]);
  // Moustache: the band between the nose and the upper lip, in front.
  const moustache = ellipsoid([0, mouthY - 0.05 * s, (mouthZ + at.noseBaseZ) / 2 - 0.008 * s], [lw + 0.03 * s, 0.14 * s, (at.noseBaseZ - mouthZ) / 2 + 0.004 * s]);
  // Goatee: the chin below the mouth.
  const goatee = ellipsoid([0, mouthY, mouthZ - 0.13 * s], [0.13 * s, 0.25 * s, 0.13 * s]);
  // Full beard: everything below a cheek line that rises from the mouth corners to the sideburns, in front of the ears.
  const full = (x: number, y: number, z: number): number => {
    const line = mouthZ + 0.09 * s + (at.earZ + 0.02 * s - mouthZ - 0.09 * s) * smoothstep(mouthY + 0.1 * s, at.earY - 0.05 * s, y);
    return Math.max(z - line, y - (at.earY - 0.03 * s), -(z - (mouthZ - 0.36 * s)));
  };
  const region: Sdf =
    b.style === 'moustache' ? moustache
      : b.style === 'goatee' ? (x, y, z) => Math.min(moustache(x, y, z), goatee(x, y, z))
        : (x, y, z) => Math.min(moustache(x, y, z), full(x, y, z));
  return (x, y, z) => smax(smax(shell(x, y, z), region(x, y, z), 0.015 * s), -mouth(x, y, z), 0.01 * s);
}
