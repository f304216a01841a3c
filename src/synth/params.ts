/**
 * The parameters of one synthetic head and the seeded sampler that draws them.
 *
 * Units: the FaceLift world frame (Z up, the face looks toward −Y, the subject's right is −X; spec
 * data-formats.md §2). One unit is about 16 cm, chosen so that a front view from the 2.7-unit, 50° camera frames
 * the face like FaceLift's crop statistics (face box ≈ 194 px around (252, 280) in 512², pipeline.md §3) and the
 * whole head, hair included, fits the reconstruction crop box [−0.91, 0.91]² × [−1, 1] (pipeline.md §6.1).
 *
 * Shape fields are multipliers around 1 (1 = the average head) unless stated otherwise; colours are sRGB in
 * [0, 1], stored straight into the Gaussians' DC colour (no colour management).
 */
import { createRng, type Rng } from './rng.ts';

export type Rgb = readonly [number, number, number];

export type HairStyle = 'bald' | 'short' | 'bob' | 'long' | 'bun' | 'ponytail' | 'afro';
export const HAIR_STYLES: readonly HairStyle[] = ['bald', 'short', 'bob', 'long', 'bun', 'ponytail', 'afro'];

export type BeardStyle = 'moustache' | 'goatee' | 'full';
export const BEARD_STYLES: readonly BeardStyle[] = ['moustache', 'goatee', 'full'];

export interface HeadParams {
  /** The seed the parameters were drawn from (informational). */
  seed: number;
  /**
   * When true, nothing left/right-asymmetric is used (hair parting, side light, colour noise uses |x|) and the
   * generator samples one half and mirrors it, so the Gaussian set is exactly mirror-symmetric about x = 0.
   */
  symmetric: boolean;
  shape: {
    /** Overall size. */
    scale: number;
    skullWidth: number;
    skullDepth: number;
    skullHeight: number;
    faceWidth: number;
    faceLength: number;
    jawWidth: number;
    /** How far the chin reaches forward / down. */
    chinProtrusion: number;
    chinWidth: number;
    cheekFullness: number;
    /** Brow-ridge prominence. */
    browRidge: number;
  };
  nose: { length: number; width: number; protrusion: number; bridgeWidth: number; tipSize: number };
  eyes: {
    /** Half the inter-pupil distance, world units. */
    halfSpacing: number;
    /** Eyeball radius, world units. */
    radius: number;
    /** Height of the eye line above the origin, world units. */
    height: number;
    /** Lid opening multiplier. */
    openness: number;
    /** Outer-corner tilt, degrees (positive = outer corners up). */
    tiltDeg: number;
    irisColour: Rgb;
    /** Iris angular radius, degrees. */
    irisDeg: number;
    /** Pupil angular radius, degrees. */
    pupilDeg: number;
    /** Where both eyes look: degrees toward the subject's left (+x), and up. */
    gazeYawDeg: number;
    gazePitchDeg: number;
  };
  brows: { colour: Rgb; thickness: number; arch: number; height: number };
  /** smile: mouth-corner lift, −0.3 (down) … 1 (smiling). */
  lips: { width: number; upper: number; lower: number; colour: Rgb; smile: number };
  ears: { size: number; protrusionDeg: number };
  neck: { width: number };
  shoulders: { width: number };
  skin: {
    tone: Rgb;
    /** Cheek redness 0..1. */
    blush: number;
    /** Amplitude of low-frequency tone variation. */
    mottling: number;
    /** Stubble/beard-shadow darkening of the lower face 0..1. */
    stubble: number;
    /** Freckle density over cheeks and nose 0..1. */
    freckles: number;
    /** Depth of forehead lines and smile folds 0..1 (age). */
    lines: number;
  };
  hair: {
    style: HairStyle;
    colour: Rgb;
    /** Shell thickness over the skull, world units. */
    thickness: number;
    /** Front hairline height above the origin, world units. */
    hairline: number;
    /** Lowest point of long/bob hair or of a ponytail, world z. */
    endZ: number;
    /** Parting position along x, world units (0 = centre). */
    partX: number;
  };
  /** Facial hair (in the hair colour), or null. */
  beard: null | {
    style: BeardStyle;
    /** Shell thickness, world units. */
    thickness: number;
    colour: Rgb;
  };
  glasses: null | {
    frameColour: Rgb;
    /** Rim half-width / half-height, world units. */
    halfWidth: number;
    halfHeight: number;
    /** Superellipse exponent: 2 round … 6 rectangular. */
    squareness: number;
    /** Rim radius (world units). */
    thickness: number;
    /** Dark lenses (sunglasses) or none. */
    sunglasses: boolean;
  };
  /** necklineDepth < 0: a high (turtle) neck. */
  clothing: { colour: Rgb; necklineDepth: number };
  lighting: {
    /** Direction toward the key light (need not be normalised). */
    direction: readonly [number, number, number];
    ambient: number;
    diffuse: number;
    /** Strength of ambient occlusion darkening 0..1. */
    occlusion: number;
    /** Tint of the light. */
    tint: Rgb;
  };
}

const SKIN_TONES: Rgb[] = [
  [0.97, 0.83, 0.72],
  [0.93, 0.75, 0.62],
  [0.84, 0.63, 0.48],
  [0.72, 0.51, 0.36],
  [0.56, 0.37, 0.25],
  [0.40, 0.26, 0.17],
  [0.28, 0.18, 0.12],
];

const HAIR_COLOURS: ReadonlyArray<readonly [Rgb, number]> = [
  [[0.075, 0.065, 0.06], 4], // black
  [[0.15, 0.09, 0.06], 4], // dark brown
  [[0.30, 0.19, 0.11], 3], // brown
  [[0.48, 0.33, 0.20], 2], // light brown
  [[0.50, 0.21, 0.10], 1], // auburn
  [[0.78, 0.63, 0.40], 2], // blonde
  [[0.88, 0.83, 0.70], 0.5], // platinum
  [[0.58, 0.57, 0.56], 1], // grey
  [[0.84, 0.84, 0.82], 0.5], // white
  [[0.35, 0.22, 0.55], 0.25], // dyed purple
  [[0.20, 0.35, 0.65], 0.25], // dyed blue
];

const IRIS_COLOURS: ReadonlyArray<readonly [Rgb, number]> = [
  [[0.18, 0.10, 0.05], 5], // dark brown
  [[0.36, 0.21, 0.09], 3], // brown
  [[0.45, 0.37, 0.18], 1.5], // hazel
  [[0.28, 0.45, 0.26], 1], // green
  [[0.29, 0.47, 0.68], 1.5], // blue
  [[0.47, 0.53, 0.58], 1], // grey
];

const FRAME_COLOURS: Rgb[] = [
  [0.05, 0.05, 0.05],
  [0.30, 0.17, 0.08],
  [0.70, 0.58, 0.30],
  [0.62, 0.63, 0.66],
  [0.55, 0.10, 0.12],
];

export function lerpRgb(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function scaleRgb(c: Rgb, k: number): Rgb {
  return [Math.min(1, c[0] * k), Math.min(1, c[1] * k), Math.min(1, c[2] * k)];
}

/** A point on the skin-tone ramp, t ∈ [0, 1] light → deep. */
export function skinToneAt(t: number): Rgb {
  const u = Math.min(1, Math.max(0, t)) * (SKIN_TONES.length - 1);
  const i = Math.min(SKIN_TONES.length - 2, Math.floor(u));
  return lerpRgb(SKIN_TONES[i], SKIN_TONES[i + 1], u - i);
}

function hsv(h: number, s: number, v: number): Rgb {
  const f = (n: number): number => {
    const k = (n + h * 6) % 6;
    return v - v * s * Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

/** Truncated normal around 1 with standard deviation `sd` (kept within ±2.5 sd). */
function around(rng: Rng, sd: number): number {
  return 1 + sd * Math.max(-2.5, Math.min(2.5, rng.normal()));
}

export interface SampleOptions {
  /** Force a hair style (otherwise drawn). */
  hairStyle?: HairStyle;
  /** Force glasses on/off (otherwise 25 % of heads wear them). */
  glasses?: boolean;
  /** Draw a mirror-symmetric head (see HeadParams.symmetric). */
  symmetric?: boolean;
  /** Force a beard style, or none with null (otherwise 18 % of heads have one). */
  beard?: BeardStyle | null;
  /** Lighting style: 'studio' (soft, for training renders) or 'photo' (stronger directional, for portraits). */
  lighting?: 'studio' | 'photo';
}

/**
 * Draws a head's parameters from `seed`. Every group of parameters comes from its own forked stream, so the
 * draws of one group do not depend on how many numbers another group consumed.
 */
export function sampleHeadParams(seed: number, opts: SampleOptions = {}): HeadParams {
  const root = createRng(seed);
  const symmetric = opts.symmetric ?? false;
  const r = (label: string): Rng => root.fork(label);

  const sh = r('shape');
  const shape = {
    scale: around(sh, 0.03),
    skullWidth: around(sh, 0.04),
    skullDepth: around(sh, 0.035),
    skullHeight: around(sh, 0.035),
    faceWidth: around(sh, 0.05),
    faceLength: around(sh, 0.04),
    jawWidth: around(sh, 0.08),
    chinProtrusion: around(sh, 0.25),
    chinWidth: around(sh, 0.15),
    cheekFullness: around(sh, 0.12),
    browRidge: around(sh, 0.3),
  };

  const nr = r('nose');
  const nose = {
    length: around(nr, 0.08),
    width: around(nr, 0.12),
    protrusion: around(nr, 0.12),
    bridgeWidth: around(nr, 0.12),
    tipSize: around(nr, 0.12),
  };

  const er = r('eyes');
  const eyes = {
    halfSpacing: 0.195 * around(er, 0.04),
    radius: 0.074 * around(er, 0.04),
    height: 0.10 + 0.015 * er.normal(),
    openness: around(er, 0.12),
    tiltDeg: 4 * er.normal(),
    irisColour: er.weighted(IRIS_COLOURS),
    irisDeg: 31 * around(er, 0.05),
    pupilDeg: 11 * around(er, 0.12),
    gazeYawDeg: symmetric ? 0 : 6 * er.normal(),
    gazePitchDeg: 4 * er.normal() - 2,
  };

  const skr = r('skin');
  const tone0 = skinToneAt(skr.next());
  // Undertone: a little warmer (redder) or more olive.
  const under = 0.04 * skr.normal();
  const tone: Rgb = [Math.min(1, tone0[0] * (1 + under)), tone0[1], Math.min(1, tone0[2] * (1 - under))];
  const skin = {
    tone,
    blush: Math.max(0, 0.35 + 0.2 * skr.normal()),
    mottling: 0.03 + 0.03 * skr.next(),
    stubble: skr.chance(0.2) ? skr.range(0.2, 0.7) : 0,
    freckles: skr.chance(0.12) ? skr.range(0.3, 1) : 0,
    lines: skr.chance(0.3) ? skr.range(0.2, 1) : 0,
  };

  const hr = r('hair');
  const style = opts.hairStyle ?? hr.weighted<HairStyle>([['short', 4], ['long', 3], ['bob', 2], ['bun', 1.2], ['ponytail', 1.3], ['afro', 1], ['bald', 1]]);
  const hairColour = skr.chance(0.02) ? scaleRgb(tone, 0.5) : hr.weighted(HAIR_COLOURS);
  const hair = {
    style,
    colour: hairColour,
    thickness: style === 'bun' || style === 'ponytail' ? hr.range(0.02, 0.035) : style === 'short' ? hr.range(0.02, 0.06)
      : style === 'afro' ? hr.range(0.16, 0.24) : hr.range(0.04, 0.08),
    hairline: 0.55 + 0.05 * hr.normal() - (style === 'bob' || style === 'long' ? hr.range(0, 0.15) : 0),
    endZ: style === 'long' ? hr.range(-0.9, -0.5) : style === 'bob' ? hr.range(-0.42, -0.2) : style === 'ponytail' ? hr.range(-0.5, -0.1) : 0,
    partX: symmetric ? 0 : hr.range(-0.15, 0.15),
  };

  const br = r('brows');
  const brows = {
    // Brows follow the hair colour, except dyed hair (blue/purple): then a natural dark brown.
    colour: lerpRgb(hairColour[2] > hairColour[0] + 0.1 ? [0.16, 0.11, 0.08] : hairColour, [0.12, 0.09, 0.07], 0.4 + 0.3 * br.next()),
    thickness: 0.02 * around(br, 0.2),
    arch: 0.02 * around(br, 0.5),
    height: 0.085 + 0.01 * br.normal(),
  };

  const lr = r('lips');
  const lipBase = lerpRgb(tone, [0.72, 0.30, 0.32], 0.45 + 0.1 * lr.next());
  const lipstick = lr.chance(0.12);
  const lips = {
    width: around(lr, 0.08),
    upper: around(lr, 0.15),
    lower: around(lr, 0.15),
    smile: lr.chance(0.35) ? lr.range(0.2, 1) : lr.range(-0.3, 0.2),
    colour: lipstick ? lr.pick<Rgb>([[0.70, 0.08, 0.12], [0.55, 0.18, 0.22], [0.78, 0.42, 0.45]]) : scaleRgb(lipBase, 0.92),
  };

  const ar = r('ears');
  const ears = { size: around(ar, 0.08), protrusionDeg: 12 + 6 * ar.normal() };

  const bd = r('body');
  const neck = { width: around(bd, 0.06) };
  const shoulders = { width: around(bd, 0.05) };
  const clothing = {
    colour: hsv(bd.next(), bd.range(0.1, 0.7), bd.range(0.15, 0.9)),
    necklineDepth: bd.chance(0.12) ? bd.range(-0.16, -0.1) : bd.range(0, 0.12),
  };

  const bdr = r('beard');
  const beardStyle = opts.beard !== undefined ? opts.beard : bdr.chance(0.18) ? bdr.weighted<BeardStyle>([['full', 2], ['goatee', 1], ['moustache', 1]]) : null;
  // Beards match the hair, but go grey on their own sometimes and stay natural under dyed hair.
  const dyed = hairColour[2] > hairColour[0] + 0.1;
  const beardColour: Rgb = bdr.chance(0.15) ? [0.6, 0.59, 0.57] : dyed ? [0.16, 0.11, 0.08] : hairColour;
  const beard = beardStyle ? { style: beardStyle, thickness: bdr.range(0.012, 0.035), colour: beardColour } : null;

  const gr = r('glasses');
  const wearsGlasses = opts.glasses ?? gr.chance(0.25);
  const glasses = wearsGlasses
    ? {
        frameColour: gr.pick(FRAME_COLOURS),
        halfWidth: gr.range(0.095, 0.12),
        halfHeight: gr.range(0.065, 0.09),
        squareness: gr.range(2, 6),
        thickness: gr.range(0.007, 0.013),
        sunglasses: gr.chance(0.2),
      }
    : null;

  const li = r('light');
  const photo = opts.lighting === 'photo';
  const side = symmetric ? 0 : photo ? li.range(-1, 1) : li.range(-0.4, 0.4);
  const ambient = photo ? li.range(0.3, 0.6) : li.range(0.55, 0.7);
  const warm = photo ? 0.06 * li.normal() : 0.02 * li.normal();
  const lighting = {
    direction: [side, -1, photo ? li.range(0.1, 1.0) : li.range(0.4, 0.8)] as const,
    ambient,
    diffuse: (photo ? 1.05 : 1.0) - ambient,
    occlusion: li.range(0.5, 0.8),
    tint: [1 + warm, 1, 1 - warm] as const,
  };

  return { seed, symmetric, shape, nose, eyes, brows, lips, ears, neck, shoulders, skin, hair, beard, glasses, clothing, lighting };
}
