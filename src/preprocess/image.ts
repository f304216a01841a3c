import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { KernelEnum, Metadata, OutputInfo } from 'sharp';
import { UserError } from '../util/errors.ts';

/** Interleaved 8-bit pixels, row-major, `channels` values per pixel. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** A decoded input photo: always RGBA (alpha 255 where the file had none), EXIF orientation applied. */
export interface LoadedImage {
  rgba: RawImage & { channels: 4 };
  /** True when the file's alpha channel carries a cut-out (see `alphaIsMeaningful`); then matting is skipped. */
  hasAlpha: boolean;
  /** What the file was, before any conversion. */
  source: {
    label: string;
    format: string;
    width: number;
    height: number;
    space: string;
    depth: string;
    channels: number;
    orientation: number;
    /** Factor applied to reach `maxSide` (1 when not downscaled). */
    scale: number;
  };
}

export interface LoadOptions {
  /** Refuse images with more pixels than this (checked from the header, before decoding). */
  maxPixels?: number;
  /** Downscale (lanczos3) so that the longer side is at most this many pixels. */
  maxSide?: number;
}

/** 100 MP: a 10000×10000 photo decodes to 400 MB of RGBA, which is about what a 24 GB machine should take. */
export const DEFAULT_MAX_PIXELS = 100_000_000;
/** Longer than any camera's portrait needs: the crop shrinks the face to ~194 px anyway. */
export const DEFAULT_MAX_SIDE = 4096;

const SIGNATURES: Array<{ format: string; test: (b: Uint8Array) => boolean }> = [
  { format: 'png', test: (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { format: 'jpeg', test: (b) => startsWith(b, [0xff, 0xd8, 0xff]) },
  { format: 'webp', test: (b) => startsWith(b, [0x52, 0x49, 0x46, 0x46]) && ascii(b, 8, 4) === 'WEBP' },
  { format: 'gif', test: (b) => ascii(b, 0, 4) === 'GIF8' },
  { format: 'tiff', test: (b) => startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a]) },
  { format: 'avif/heif', test: (b) => ascii(b, 4, 4) === 'ftyp' },
];

/** The image format named by the file's first bytes (not its extension), or undefined if unknown. */
export function sniffFormat(bytes: Uint8Array): string | undefined {
  return SIGNATURES.find((s) => s.test(bytes))?.format;
}

/**
 * Decode a photo into 8-bit sRGB RGBA with sharp. Grayscale, palette, 16-bit and CMYK inputs are converted to
 * sRGB; the EXIF orientation is applied (rembg, the reference's first step, does the same). Corrupt, truncated,
 * unknown or oversized inputs throw a `UserError` naming the file.
 */
export async function loadImage(input: string | Uint8Array, opts: LoadOptions = {}): Promise<LoadedImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxSide = opts.maxSide ?? DEFAULT_MAX_SIDE;
  const label = typeof input === 'string' ? input : '<buffer>';
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    try {
      bytes = await readFile(input);
    } catch (e) {
      throw new UserError(`cannot read image ${label}: ${(e as Error).message}`, { cause: e });
    }
  } else {
    bytes = input;
  }
  if (bytes.length === 0) throw new UserError(`image ${label} is empty (0 bytes)`);
  const format = sniffFormat(bytes);
  if (!format) {
    throw new UserError(`${label} is not an image this tool can read (expected PNG or JPEG; the first bytes match no known image format)`);
  }

  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new UserError(`cannot decode ${label} (${format}): ${oneLine(e)}; the file is corrupt or not a supported image`, { cause: e });
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (!meta.width || !meta.height) throw new UserError(`cannot decode ${label}: the ${format} header has no image size`);
  if (pixels > maxPixels) {
    throw new UserError(
      `${label} is ${meta.width}×${meta.height} (${(pixels / 1e6).toFixed(1)} MP), more than the limit of ` +
      `${(maxPixels / 1e6).toFixed(0)} MP; downscale it first (the face only needs a few hundred pixels)`,
    );
  }
  const orientation = meta.orientation ?? 1;
  const [ow, oh] = orientation >= 5 ? [meta.height, meta.width] : [meta.width, meta.height];
  const scale = Math.min(1, maxSide / Math.max(ow, oh));

  let decoded: { data: Buffer; info: OutputInfo };
  try {
    // failOn 'truncated': a cut-off download must fail here, not become a half-grey portrait.
    let p = sharp(bytes, { autoOrient: true, failOn: 'truncated', limitInputPixels: maxPixels });
    if (scale < 1) {
      p = p.resize(Math.max(1, Math.round(ow * scale)), Math.max(1, Math.round(oh * scale)), { kernel: 'lanczos3', fit: 'fill' });
    }
    decoded = await p.toColourspace('srgb').ensureAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new UserError(`cannot decode ${label} (${format}): ${oneLine(e)}; the file is corrupt or truncated`, { cause: e });
  }
  const { data, info } = decoded;
  if (info.channels !== 4) throw new Error(`sharp returned ${info.channels} channels for ${label}, expected 4`);
  const rgba = { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 4 as const };
  return {
    rgba,
    hasAlpha: meta.hasAlpha === true && alphaIsMeaningful(rgba),
    source: {
      label, format: meta.format ?? format, width: meta.width, height: meta.height, space: meta.space ?? 'unknown',
      depth: meta.depth ?? 'unknown', channels: meta.channels ?? 0, orientation, scale,
    },
  };
}

/**
 * Whether an RGBA image's alpha is a real cut-out rather than an exporter's fully opaque (or fully empty) channel:
 * at least 1% of the pixels are not opaque and at least 1% are at least half opaque.
 */
export function alphaIsMeaningful(img: RawImage & { channels: 4 }): boolean {
  const n = img.width * img.height;
  let transparent = 0;
  let solid = 0;
  for (let i = 3; i < img.data.length; i += 4) {
    const a = img.data[i]!;
    if (a < 255) transparent++;
    if (a >= 128) solid++;
  }
  return transparent >= 0.01 * n && solid >= 0.01 * n;
}

/** Drop the alpha channel. */
export function rgbOf(img: RawImage & { channels: 4 }): RawImage & { channels: 3 } {
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[3 * i] = img.data[4 * i]!;
    out[3 * i + 1] = img.data[4 * i + 1]!;
    out[3 * i + 2] = img.data[4 * i + 2]!;
  }
  return { data: out, width: img.width, height: img.height, channels: 3 };
}

/** The alpha channel as floats in [0, 1]. */
export function alphaOf(img: RawImage & { channels: 4 }): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = img.data[4 * i + 3]! / 255;
  return out;
}

/** Resize with sharp (`fill`: non-uniform when the aspect changes). */
export async function resizeRaw<C extends 1 | 3 | 4>(
  img: RawImage & { channels: C }, width: number, height: number, kernel: keyof KernelEnum,
): Promise<RawImage & { channels: C }> {
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() };
  let p = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .resize(width, height, { kernel, fit: 'fill', fastShrinkOnLoad: false });
  // A 1-band raw input would otherwise come back as 3-band sRGB.
  if (img.channels === 1) p = p.toColourspace('b-w');
  const { data } = await p.raw().toBuffer({ resolveWithObject: true });
  if (data.length !== width * height * img.channels) throw new Error(`resize returned ${data.length} bytes, expected ${width}×${height}×${img.channels}`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height, channels: img.channels };
}

/**
 * Resize like Pillow's `Image.resize(size, BICUBIC)` (Catmull-Rom, a = −0.5, pixel centres at +0.5), the filter
 * the reference's crop uses. Shrinking: sharp's `cubic` reduce already matches Pillow (mean |Δ| ≈ 0.003 on the
 * crop golden). Enlarging: sharp's resize places pixel centres differently (edges move by about half a pixel), so
 * enlargement goes through libvips' affine transform with the bicubic interpolator and Pillow's centre convention,
 * on a copy extended by edge replication (Pillow clamps at the border instead of blending with a background).
 */
export async function resizeBicubicPil<C extends 1 | 3 | 4>(
  img: RawImage & { channels: C }, width: number, height: number,
): Promise<RawImage & { channels: C }> {
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() };
  if (width < img.width || height < img.height) return resizeRaw(img, width, height, 'cubic');
  const pad = 3;
  const sx = width / img.width;
  const sy = height / img.height;
  let p = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .extend({ top: pad, bottom: pad, left: pad, right: pad, extendWith: 'copy' });
  // Output pixel X samples input x = (X + 0.5)/s − 0.5, i.e. X = s·(x + 0.5) − 0.5; libvips: X = s·(x + idx) + odx.
  p = sharp(await p.raw().toBuffer(), { raw: { width: img.width + 2 * pad, height: img.height + 2 * pad, channels: img.channels } })
    .affine([[sx, 0], [0, sy]], { interpolator: 'bicubic', idx: 0.5 - pad, idy: 0.5 - pad, odx: -0.5, ody: -0.5 });
  if (img.channels === 1) p = p.toColourspace('b-w');
  const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
  if (info.width < width || info.height < height || info.channels !== img.channels) {
    throw new Error(`affine resize returned ${info.width}×${info.height}×${info.channels}, expected at least ${width}×${height}×${img.channels}`);
  }
  // The padded transform yields a few extra columns/rows on the right and bottom: keep the top-left width×height.
  const out = new Uint8Array(width * height * img.channels);
  const row = width * img.channels;
  for (let y = 0; y < height; y++) out.set(data.subarray(y * info.width * img.channels, y * info.width * img.channels + row), y * row);
  return { data: out, width, height, channels: img.channels };
}

function startsWith(b: Uint8Array, sig: number[]): boolean {
  return b.length >= sig.length && sig.every((v, i) => b[i] === v);
}

function ascii(b: Uint8Array, at: number, len: number): string {
  return b.length >= at + len ? String.fromCharCode(...b.subarray(at, at + len)) : '';
}

function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.trim();
}
