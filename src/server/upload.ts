/**
 * The submit form (multipart/form-data: one `image` file plus setting fields), read with busboy under hard limits.
 * The image type comes from the file's first bytes, never from its name or the declared content type.
 */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import sharp from 'sharp';
import { sniffFormat } from '../preprocess/index.ts';

/** Formats the pipeline decodes (sharp) that a camera or phone usually produces. */
export const ACCEPTED_FORMATS = ['png', 'jpeg', 'webp'] as const;

export interface Upload {
  bytes: Buffer;
  format: (typeof ACCEPTED_FORMATS)[number];
  width: number;
  height: number;
  fields: Map<string, string>;
}

/** A bad request; `status` is the HTTP status to answer with, the message is for the user. */
export class UploadError extends Error {
  override name = 'UploadError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface UploadLimits {
  /** Largest image file, bytes. */
  maxBytes: number;
  /** Largest image, pixels (checked from the header before anything decodes it). */
  maxPixels?: number;
}

function mb(n: number): string {
  return `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 2 : 0)} MB`;
}

/**
 * Reads the whole request. On a limit breach the rest of the body is still read and discarded (so the client sees
 * our answer rather than a reset connection), up to a hard ceiling after which the socket is dropped.
 */
export function readUpload(req: IncomingMessage, limits: UploadLimits): Promise<Upload> {
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
    return Promise.reject(new UploadError(415, 'send the photo as multipart/form-data with a file field named "image"'));
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  const envelope = 64 * 1024;
  if (declared > limits.maxBytes + envelope) {
    return Promise.reject(new UploadError(413, `the upload is ${mb(declared)}; the limit is ${mb(limits.maxBytes)} — use a smaller photo (a few hundred pixels around the face are enough)`));
  }

  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: limits.maxBytes, files: 1, fields: 16, fieldSize: 1024, parts: 20 } });
    } catch (e) {
      req.resume();
      reject(new UploadError(400, `the form could not be read: ${(e as Error).message}`));
      return;
    }
    const fields = new Map<string, string>();
    const chunks: Buffer[] = [];
    let fileSeen = false;
    // The first problem wins; busboy keeps parsing (discarding) to the end of the body, so the client is still
    // reading our answer rather than a reset connection when we reply.
    let failure: UploadError | undefined;
    const fail = (e: UploadError) => { failure ??= e; };

    let received = 0;
    const ceiling = limits.maxBytes + 64 * 2 ** 20;
    req.on('data', (c: Buffer) => {
      received += c.length;
      if (received > ceiling) {
        req.destroy();
        reject(new UploadError(413, `the upload is larger than the limit of ${mb(limits.maxBytes)}`));
      }
    });
    req.on('error', () => reject(new UploadError(400, 'the upload was interrupted')));

    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) fail(new UploadError(400, `the field "${name}" is too long`));
      else fields.set(name, value);
    });
    bb.on('file', (name, stream) => {
      if (name !== 'image' || fileSeen) {
        fail(new UploadError(400, `unexpected file field "${name}"; send one photo in the field "image"`));
        stream.resume();
        return;
      }
      fileSeen = true;
      stream.on('data', (c: Buffer) => { if (!failure) chunks.push(c); });
      stream.on('limit', () => {
        chunks.length = 0;
        fail(new UploadError(413, `the photo is larger than the limit of ${mb(limits.maxBytes)}; use a smaller photo (a few hundred pixels around the face are enough)`));
      });
    });
    for (const ev of ['filesLimit', 'fieldsLimit', 'partsLimit'] as const) {
      bb.on(ev, () => fail(new UploadError(400, 'the form has too many parts; send one image and the settings')));
    }
    bb.on('error', (e) => {
      // A malformed body: stop parsing, read the rest away, then answer.
      req.unpipe(bb);
      req.resume();
      const err = new UploadError(400, `the form could not be read: ${(e as Error).message}`);
      if (req.readableEnded) reject(err);
      else req.on('end', () => reject(err));
    });
    bb.on('close', () => { void finish(); });

    const finish = async () => {
      if (failure) return reject(failure);
      if (!fileSeen) return reject(new UploadError(400, 'no photo: send the image in a file field named "image"'));
      const bytes = Buffer.concat(chunks);
      if (bytes.length === 0) return reject(new UploadError(400, 'the photo is empty (0 bytes)'));
      const format = sniffFormat(bytes);
      if (!format || !(ACCEPTED_FORMATS as readonly string[]).includes(format)) {
        return reject(new UploadError(415, format
          ? `${format.toUpperCase()} images are not accepted; use a PNG, JPEG or WebP photo`
          : 'the file is not an image (its first bytes match no image format); use a PNG, JPEG or WebP photo'));
      }
      try {
        const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
        if (!meta.width || !meta.height) throw new Error('no image size in the header');
        const maxPixels = limits.maxPixels ?? 100e6;
        if (meta.width * meta.height > maxPixels) {
          return reject(new UploadError(413, `the photo is ${meta.width}×${meta.height}, more than ${(maxPixels / 1e6).toFixed(0)} megapixels; downscale it first`));
        }
        resolve({ bytes, format: format as Upload['format'], width: meta.width, height: meta.height, fields });
      } catch (e) {
        reject(new UploadError(400, `the ${format.toUpperCase()} file could not be read (${(e as Error).message.split('\n')[0]}); it may be corrupt or cut off`));
      }
    };
    req.pipe(bb);
  });
}
