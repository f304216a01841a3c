/** PNG encoding of raw 8-bit pixels (sharp/libspng; deterministic for identical input). */
import sharp from 'sharp';

export async function encodePng(data: Uint8Array, width: number, height: number, channels: 3 | 4): Promise<Buffer> {
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } })
    .png({ compressionLevel: 6 })
    .toBuffer();
}
