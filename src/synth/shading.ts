/**
 * Colours of surface points: albedo by region (skin with blush, brows, lips, lash line, nostrils; sclera, iris,
 * pupil; clothing; hair) times baked lighting (ambient + half-Lambert key light + SDF ambient occlusion).
 * Lighting is baked because FaceLift's Gaussians carry view-independent colour (SH degree 0).
 */
import type { Anatomy } from './anatomy.ts';
import type { HeadParams, Rgb } from './params.ts';
import { clamp01, smoothstep, type Sdf } from './sdf.ts';

/** 32-bit integer hash of a lattice point → [0, 1). */
export function hash3(ix: number, iy: number, iz: number, seed: number): number {
  let h = Math.imul(ix | 0, 0x8da6b343) ^ Math.imul(iy | 0, 0xd8163841) ^ Math.imul(iz | 0, 0xcb1ab31f) ^ Math.imul(seed | 0, 0x27d4eb2d);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  h ^= h >>> 15;
  return (h >>> 0) / 4294967296;
}

/** Smooth value noise in [0, 1) with unit lattice spacing. */
export function valueNoise(x: number, y: number, z: number, seed: number): number {
  const ix = Math.floor(x), iy = Math.floor(y), iz = Math.floor(z);
  const fx = x - ix, fy = y - iy, fz = z - iz;
  const ux = fx * fx * (3 - 2 * fx), uy = fy * fy * (3 - 2 * fy), uz = fz * fz * (3 - 2 * fz);
  let acc = 0;
  for (let k = 0; k < 8; k++) {
    const dx = k & 1, dy = (k >> 1) & 1, dz = (k >> 2) & 1;
    const w = (dx ? ux : 1 - ux) * (dy ? uy : 1 - uy) * (dz ? uz : 1 - uz);
    acc += w * hash3(ix + dx, iy + dy, iz + dz, seed);
  }
  return acc;
}

/** Per-point jitter in [−1, 1) from a quantised position (mirror images share it when `mirror` is true). */
export function pointJitter(x: number, y: number, z: number, seed: number, mirror: boolean): number {
  const q = 1e5;
  return 2 * hash3(Math.round((mirror ? Math.abs(x) : x) * q), Math.round(y * q), Math.round(z * q), seed) - 1;
}

export interface Light {
  dir: readonly [number, number, number];
  ambient: number;
  diffuse: number;
  occlusion: number;
  tint: Rgb;
}

export function lightOf(p: HeadParams): Light {
  const [a, b, c] = p.lighting.direction;
  const n = Math.hypot(a, b, c);
  return { dir: [a / n, b / n, c / n], ambient: p.lighting.ambient, diffuse: p.lighting.diffuse, occlusion: p.lighting.occlusion, tint: p.lighting.tint };
}

/** Ambient occlusion from two probes along the normal (0 = open, 1 = fully occluded). */
export function occlusion(scene: Sdf, x: number, y: number, z: number, nx: number, ny: number, nz: number, s: number): number {
  let occ = 0;
  const probes = [0.03 * s, 0.09 * s];
  const weights = [0.6, 0.35];
  for (let i = 0; i < 2; i++) {
    const h = probes[i];
    const d = scene(x + nx * h, y + ny * h, z + nz * h);
    occ += weights[i] * Math.max(0, (h - d) / h);
  }
  return clamp01(occ);
}

/** albedo × lighting → display colour in [0, 1]. */
export function lit(albedo: Rgb, light: Light, nx: number, ny: number, nz: number, ao: number, out: Float32Array, o: number): void {
  const ndl = nx * light.dir[0] + ny * light.dir[1] + nz * light.dir[2];
  const half = 0.5 + 0.5 * ndl; // half-Lambert: soft terminator, no black back side
  const shade = (light.ambient + light.diffuse * half * half * 1.3) * (1 - light.occlusion * ao * 0.8);
  out[o] = clamp01(albedo[0] * shade * light.tint[0]);
  out[o + 1] = clamp01(albedo[1] * shade * light.tint[1]);
  out[o + 2] = clamp01(albedo[2] * shade * light.tint[2]);
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

const SCLERA: Rgb = [0.92, 0.90, 0.86];
const PUPIL: Rgb = [0.02, 0.02, 0.025];
const MOUTH: Rgb = [0.22, 0.07, 0.07];

/** Below the neckline (a crew/V neck, or a turtleneck up the neck). */
function isClothing(p: HeadParams, x: number, y: number, z: number): boolean {
  const s = p.shape.scale;
  const depth = p.clothing.necklineDepth;
  const turtle = depth < 0;
  const neckline = turtle ? -0.80 - depth : -0.80 - depth * smoothstep(0.05, -0.3, y) - 0.06 * Math.abs(x) / 0.3;
  return z < neckline && (turtle ? y > -0.32 * s || z < -0.8 : Math.hypot(x, y - 0.09 * s) > 0.2 * s);
}

/** Strength of a baked highlight: wet eyes, lips, skin; matte clothes. */
export function bodyGloss(a: Anatomy, p: HeadParams, x: number, y: number, z: number): number {
  const s = p.shape.scale;
  if (a.parts.eyes(x, y, z) < 0.002 * s) return 0.3;
  if (isClothing(p, x, y, z)) return 0;
  return a.parts.lips(x, y, z) < 0.006 * s ? 0.1 : 0.05;
}

/** Albedo of a body point (skin, eyes, lips, clothing). */
export function bodyAlbedo(a: Anatomy, p: HeadParams, x: number, y: number, z: number, nx: number, ny: number, nz: number): Rgb {
  const s = p.shape.scale;
  const mirror = p.symmetric;
  const seed = p.seed;
  // Eyes.
  if (a.parts.eyes(x, y, z) < 0.002 * s) return eyeAlbedo(a, p, x, y, z);
  const ax = mirror ? Math.abs(x) : x;

  // Clothing below the neckline.
  if (isClothing(p, x, y, z)) {
    const fold = 0.92 + 0.08 * valueNoise(ax * 9, y * 9, z * 9, seed + 7);
    return mix([0, 0, 0], p.clothing.colour, fold);
  }

  // Skin base with low-frequency mottling and a per-point grain.
  const tone = p.skin.tone;
  const m = p.skin.mottling * (2 * valueNoise(ax * 7, y * 7, z * 7, seed + 1) - 1) + 0.012 * pointJitter(x, y, z, seed, mirror);
  let c: Rgb = [tone[0] * (1 + m), tone[1] * (1 + m * 1.1), tone[2] * (1 + m * 1.2)];

  // Blush on the cheeks, redder ears and nose tip.
  const [cr, cl] = a.cheekCentres;
  const dc = Math.min(dist2(x, y, z, cr), dist2(x, y, z, cl));
  const blush = p.skin.blush * Math.exp(-dc / (0.012 * s * s));
  const nt = a.landmarks.noseTip;
  const noseRed = 0.25 * p.skin.blush * Math.exp(-dist2(x, y, z, nt) / (0.004 * s * s));
  const earRed = a.parts.ears(x, y, z) < 0.01 * s ? 0.15 : 0;
  c = mix(c, [tone[0] * 0.95, tone[1] * 0.62, tone[2] * 0.62], clamp01((blush + noseRed + earRed) * 0.45));

  // Freckles: small dots over the cheeks and the nose bridge.
  if (p.skin.freckles > 0 && y < -0.25 * s) {
    const zone = Math.exp(-((Math.abs(x) - 0.12 * s) ** 2) / (0.012 * s * s) - ((z - a.eyeCentres[0][2] + 0.1 * s) ** 2) / (0.008 * s * s));
    const dots = smoothstep(0.72, 0.8, valueNoise((mirror ? Math.abs(x) : x) * 160, y * 160, z * 160, seed + 41));
    c = mix(c, [tone[0] * 0.62, tone[1] * 0.45, tone[2] * 0.35], clamp01(p.skin.freckles * zone * dots * 0.8));
  }

  // Age lines: faint horizontal creases on the forehead and the folds from the nose wings to the mouth corners.
  if (p.skin.lines > 0 && y < -0.2 * s) {
    const ez = a.eyeCentres[0][2];
    const fh = z - ez - 0.17 * s;
    if (fh > 0 && fh < 0.16 * s && Math.abs(x) < 0.25 * s) {
      const crease = Math.max(0, Math.cos((fh / (0.045 * s)) * 2 * Math.PI)) ** 4 * smoothstep(0.25 * s, 0.1 * s, Math.abs(x));
      c = mix(c, [tone[0] * 0.7, tone[1] * 0.6, tone[2] * 0.55], clamp01(p.skin.lines * crease * 0.22));
    }
    const nt = a.landmarks.noseTip, mz = a.landmarks.mouth[2];
    const t = (nt[2] - 0.02 * s - z) / (nt[2] - 0.02 * s - mz); // 0 at the nose wing, 1 at the mouth corner
    if (t > -0.1 && t < 1.15) {
      const foldX = 0.075 * s + 0.05 * s * t;
      const fold = Math.exp(-((Math.abs(x) - foldX) ** 2) / (0.00012 * s * s));
      c = mix(c, [tone[0] * 0.72, tone[1] * 0.6, tone[2] * 0.55], clamp01(p.skin.lines * fold * 0.4));
    }
  }

  // Stubble: darker, slightly grey-blue lower face.
  if (p.skin.stubble > 0 && y < -0.1 * s) {
    const below = smoothstep(-0.14 * s, -0.26 * s, z) * smoothstep(-0.62 * s, -0.52 * s, z);
    const notLips = smoothstep(0.0, 0.02 * s, a.parts.lips(x, y, z));
    const jawSide = smoothstep(0.02 * s, 0.1 * s, -y - 0.1 * s);
    const k = p.skin.stubble * below * notLips * jawSide * (0.7 + 0.3 * pointJitter(x, y, z, seed + 3, mirror));
    c = mix(c, mix(p.hair.colour, [0.3, 0.3, 0.33], 0.3), clamp01(k * 0.55));
  }

  // Lips and mouth.
  const dl = a.parts.lips(x, y, z);
  c = mix(c, p.lips.colour, smoothstep(0.012 * s, 0.002 * s, dl));
  // The mouth line: dark inside the slit, fading over the lips' inner edges (a continuous line, not dots).
  c = mix(c, MOUTH, smoothstep(0.014 * s, 0.003 * s, a.parts.mouthSlit(x, y, z)) * smoothstep(0.008 * s, 0, dl));

  // Nostrils: the underside of the nose near the alae.
  const dn = a.parts.nose(x, y, z);
  if (dn < 0.006 * s && nz < -0.35) {
    const nx0 = 0.024 * s;
    const ny0 = nt[1] + 0.055 * s;
    const d = Math.hypot((Math.abs(x) - nx0) / 1.3, y - ny0);
    c = mix(c, [c[0] * 0.25, c[1] * 0.15, c[2] * 0.15], smoothstep(0.024 * s, 0.012 * s, d));
  }

  // Lash line / eye lids: the rim of the eye openings, darkest on the upper lid.
  const dOpen = a.parts.eyeOpenings(x, y, z);
  const eyeZ = a.eyeCentres[0][2];
  if (dOpen < 0.014 * s) {
    const upper = z > eyeZ - 0.004 * s ? 1 : 0.35;
    const lash = smoothstep(0.014 * s, 0.003 * s, dOpen) * upper;
    c = mix(c, [0.06, 0.045, 0.04], clamp01(lash * 0.9));
  }
  // The upper-lid crease: a soft darker line a little above the opening.
  if (dOpen < 0.03 * s && z > eyeZ + 0.012 * s) {
    const crease = smoothstep(0.009 * s, 0, Math.abs(dOpen - 0.021 * s));
    c = [c[0] * (1 - 0.14 * crease), c[1] * (1 - 0.17 * crease), c[2] * (1 - 0.17 * crease)];
  }

  // Eyebrows: a band above each eye, tapering outward.
  if (y < -0.2 * s) {
    const bx = Math.abs(x);
    const ex = a.eyeCentres[0][0];
    const u = (bx - ex) / (0.13 * s); // −1 at the inner end, +1 at the outer end
    if (u > -0.95 && u < 1.05) {
      const zc = eyeZ + p.brows.height * s + p.brows.arch * s * (1 - u * u) - 0.012 * s * Math.max(0, u);
      const half = p.brows.thickness * s * (1 - 0.45 * Math.max(0, u)) * (u < -0.7 ? 0.7 + (u + 0.95) : 1);
      const inBrow = smoothstep(half, half * 0.55, Math.abs(z - zc)) * smoothstep(-0.95, -0.8, u) * smoothstep(1.05, 0.9, u);
      const hairy = inBrow * (0.75 + 0.25 * pointJitter(x, y, z, seed + 5, mirror));
      c = mix(c, p.brows.colour, clamp01(hairy));
    }
  }
  return c;
}

function eyeAlbedo(a: Anatomy, p: HeadParams, x: number, y: number, z: number): Rgb {
  const ec = x >= 0 ? a.eyeCentres[0] : a.eyeCentres[1];
  const dx = x - ec[0], dy = y - ec[1], dz = z - ec[2];
  const r = Math.hypot(dx, dy, dz);
  const vx = dx / r, vy = dy / r, vz = dz / r;
  // Gaze direction (−y turned by yaw toward +x and pitched up).
  const yaw = (p.eyes.gazeYawDeg * Math.PI) / 180, pitch = (p.eyes.gazePitchDeg * Math.PI) / 180;
  const gx = Math.sin(yaw) * Math.cos(pitch), gy = -Math.cos(yaw) * Math.cos(pitch), gz = Math.sin(pitch);
  const theta = (Math.acos(Math.max(-1, Math.min(1, vx * gx + vy * gy + vz * gz))) * 180) / Math.PI;
  const iris = p.eyes.irisDeg;
  if (theta < p.eyes.pupilDeg) return PUPIL;
  if (theta < iris) {
    // Radial streaks and a darker limbal ring.
    const phi = Math.atan2(vz - gz, Math.abs(vx - gx));
    const streak = 0.85 + 0.3 * hash3(Math.floor((phi + Math.PI) * 14), 0, 0, p.seed + 11);
    const limbus = smoothstep(iris * 0.8, iris, theta);
    const k = streak * (1 - 0.55 * limbus);
    const col = p.eyes.irisColour;
    // A catchlight up and toward the key light (centred when the light is, so symmetric heads stay symmetric).
    const side = Math.max(-1, Math.min(1, p.lighting.direction[0]));
    const cl = Math.hypot(vx - gx - 0.15 * side, vz - gz - 0.28);
    if (cl < 0.09) return [0.95, 0.95, 0.95];
    return [col[0] * k, col[1] * k, col[2] * k];
  }
  // Sclera, a little pink toward the corners.
  const corner = smoothstep(45, 75, theta);
  return mix(SCLERA, [0.85, 0.62, 0.58], corner * 0.5);
}

/** Albedo of a hair point (scalp or, with `facial`, beard): base colour with per-strand jitter and slow variation. */
export function hairAlbedo(p: HeadParams, x: number, y: number, z: number, strandJitter: number, facial = false): Rgb {
  const c = facial && p.beard ? p.beard.colour : p.hair.colour;
  const k = 0.85 + 0.22 * strandJitter + 0.08 * (valueNoise(x * 6, y * 6, z * 6, p.seed + 21) - 0.5);
  return [c[0] * k, c[1] * k, c[2] * k];
}

function dist2(x: number, y: number, z: number, c: readonly number[]): number {
  const dx = x - c[0], dy = y - c[1], dz = z - c[2];
  return dx * dx + dy * dy + dz * dz;
}
