import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { UserError } from '../util/errors.ts';
import { alphaIsMeaningful, loadImage, sniffFormat } from './image.ts';
import type { LoadedImage } from './image.ts';

let dir = '';
before(async () => { dir = await mkdtemp(join(tmpdir(), 'facelift-image-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

/** 40×20 orange image with a blue 5×5 marker in the top-left corner. */
async function marked(): Promise<Sharp> {
  const w = 40;
  const h = 20;
  const data = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set([200, 100, 50], 3 * i);
  for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) data.set([20, 40, 230], 3 * (y * w + x));
  return sharp(data, { raw: { width: w, height: h, channels: 3 } });
}

function pixel(img: LoadedImage, x: number, y: number): number[] {
  const i = 4 * (y * img.rgba.width + x);
  return Array.from(img.rgba.data.subarray(i, i + 4));
}

function near(a: number[], b: number[], tol: number): boolean {
  return a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= tol);
}

async function rejectsUser(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

test('sniffs the format from the bytes, not the name', async () => {
  const img = await marked();
  assert.equal(sniffFormat(await img.clone().png().toBuffer()), 'png');
  assert.equal(sniffFormat(await img.clone().jpeg().toBuffer()), 'jpeg');
  assert.equal(sniffFormat(await img.clone().webp().toBuffer()), 'webp');
  assert.equal(sniffFormat(new TextEncoder().encode('hello world')), undefined);
});

test('plain RGB PNG from a path: RGBA out, opaque, no alpha, marker where it was', async () => {
  const p = join(dir, 'rgb.png');
  await (await marked()).png().toFile(p);
  const img = await loadImage(p);
  assert.equal(img.rgba.width, 40);
  assert.equal(img.rgba.height, 20);
  assert.equal(img.rgba.channels, 4);
  assert.equal(img.hasAlpha, false);
  assert.deepEqual(pixel(img, 2, 2), [20, 40, 230, 255]);
  assert.deepEqual(pixel(img, 30, 10), [200, 100, 50, 255]);
  assert.equal(img.source.label, p);
});

test('8-bit grayscale becomes grey RGB', async () => {
  const buf = await (await marked()).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(buf).metadata()).channels, 1);
  const img = await loadImage(buf);
  const [r, g, b, a] = pixel(img, 30, 10);
  assert.ok(r === g && g === b && a === 255 && r! > 90 && r! < 140, `grey ${[r, g, b, a]}`);
});

test('16-bit PNG (RGB and grey) is reduced to 8 bits without losing the values', async () => {
  const rgb16 = await (await marked()).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(rgb16).metadata()).depth, 'ushort');
  assert.deepEqual(pixel(await loadImage(rgb16), 30, 10), [200, 100, 50, 255]);
  const grey16 = await (await marked()).toColourspace('grey16').png().toBuffer();
  const g = pixel(await loadImage(grey16), 30, 10);
  assert.ok(g[0] === g[1] && g[1] === g[2], `grey16 ${g}`);
});

test('palette PNG decodes to its colours', async () => {
  const buf = await (await marked()).png({ palette: true }).toBuffer();
  assert.equal((await sharp(buf).metadata()).isPalette, true);
  const img = await loadImage(buf);
  assert.ok(near(pixel(img, 30, 10), [200, 100, 50, 255], 3));
  assert.ok(near(pixel(img, 2, 2), [20, 40, 230, 255], 3));
});

test('CMYK JPEG is converted to sRGB', async () => {
  const buf = await (await marked()).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
  assert.equal((await sharp(buf).metadata()).space, 'cmyk');
  const img = await loadImage(buf);
  assert.equal(img.source.space, 'cmyk');
  assert.ok(near(pixel(img, 30, 10), [200, 100, 50, 255], 30), `orange ${pixel(img, 30, 10)}`);
  const blue = pixel(img, 2, 2);
  // Saturated sRGB blue is outside the CMYK gamut: it comes back duller, but still clearly blue.
  assert.ok(blue[2]! > 120 && blue[2]! > blue[0]! + 80 && blue[2]! > blue[1]! + 50, `blue ${blue}`);
});

test('EXIF orientation 6 (rotate 90° clockwise) is applied', async () => {
  const buf = await (await marked()).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  const img = await loadImage(buf);
  assert.equal(img.source.orientation, 6);
  assert.equal(img.rgba.width, 20);
  assert.equal(img.rgba.height, 40);
  // The stored top-left corner is shown at the top-right after a clockwise quarter turn.
  assert.ok(near(pixel(img, 17, 2), [20, 40, 230, 255], 25), `top-right ${pixel(img, 17, 2)}`);
  assert.ok(near(pixel(img, 2, 2), [200, 100, 50, 255], 25), `top-left ${pixel(img, 2, 2)}`);
  // Downscaling applies to the upright image: 20×40 with maxSide 20 → 10×20.
  const small = await loadImage(buf, { maxSide: 20 });
  assert.deepEqual([small.rgba.width, small.rgba.height], [10, 20]);
});

test('RGBA with a cut-out is kept; a fully opaque alpha channel is not "meaningful"', async () => {
  const w = 40;
  const h = 20;
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([200, 100, 50, (i % w) < 20 ? 255 : 0], 4 * i);
  const cut = await sharp(data, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer();
  const img = await loadImage(cut);
  assert.equal(img.hasAlpha, true);
  assert.equal(pixel(img, 30, 5)[3], 0);
  assert.equal(pixel(img, 5, 5)[3], 255);
  const opaque = await (await marked()).ensureAlpha(1).png().toBuffer();
  assert.equal((await sharp(opaque).metadata()).hasAlpha, true);
  assert.equal((await loadImage(opaque)).hasAlpha, false);
  const empty = { data: new Uint8Array(16 * 4), width: 4, height: 4, channels: 4 as const };
  assert.equal(alphaIsMeaningful(empty), false, 'all-transparent is an exporter accident, not a cut-out');
});

test('large-but-allowed images are downscaled to maxSide (aspect kept)', async () => {
  const buf = await sharp({ create: { width: 3000, height: 1000, channels: 3, background: '#808080' } }).png().toBuffer();
  const img = await loadImage(buf, { maxSide: 1200 });
  assert.equal(img.rgba.width, 1200);
  assert.equal(img.rgba.height, 400);
  assert.equal(img.source.width, 3000);
  assert.ok(Math.abs(img.source.scale - 0.4) < 1e-12);
});

test('a header claiming 30000×30000 is refused before decoding, with the size in the message', async () => {
  const png = Buffer.from(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer());
  // IHDR is the first chunk: length(4) "IHDR"(4) width(4) height(4) ... crc(4) over type+data.
  png.writeUInt32BE(30000, 16);
  png.writeUInt32BE(30000, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  const p = join(dir, 'huge.png');
  await writeFile(p, png);
  await rejectsUser(loadImage(p), /huge\.png is 30000×30000 \(900\.0 MP\), more than the limit of 100 MP/);
});

test('corrupt, truncated, empty, non-image and missing files fail with a UserError naming the file', async () => {
  const jpeg = await (await marked()).resize(400, 200).jpeg().toBuffer();
  const truncated = join(dir, 'truncated.jpg');
  await writeFile(truncated, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  await rejectsUser(loadImage(truncated), /truncated\.jpg/);

  const png = Buffer.from(await (await marked()).png().toBuffer());
  png.fill(0x5a, 40, png.length - 20); // scramble the compressed data, keep the signature and IHDR
  const corrupt = join(dir, 'corrupt.png');
  await writeFile(corrupt, png);
  await rejectsUser(loadImage(corrupt), /cannot decode .*corrupt\.png/);

  const empty = join(dir, 'empty.png');
  await writeFile(empty, '');
  await rejectsUser(loadImage(empty), /empty\.png is empty/);

  const text = join(dir, 'notes.jpg');
  await writeFile(text, 'not really a jpeg');
  await rejectsUser(loadImage(text), /notes\.jpg is not an image/);

  await rejectsUser(loadImage(join(dir, 'missing.png')), /cannot read image .*missing\.png/);
});
