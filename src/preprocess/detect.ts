import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { resizeRaw } from './image.ts';
import type { RawImage } from './image.ts';
import type { Box } from './crop.ts';

export interface DetectedFace extends Box {
  score: number;
}

/** Finds faces in an RGB image; boxes are in that image's pixel coordinates. */
export interface FaceDetector {
  readonly name: string;
  /** Maps this detector's boxes to the ones MTCNN draws (FACE_SIZE/FACE_CENTER are MTCNN statistics). */
  readonly calibration?: BoxCalibration;
  detect(rgb: RawImage & { channels: 3 }): Promise<DetectedFace[]>;
}

/** The reference keeps MTCNN detections with probability > 0.8 (spec §3 step 1); we apply it to SSD scores. */
export const MIN_FACE_SCORE = 0.8;

/** The face the crop uses: among boxes with score > minScore, the one with the largest area (spec §3 step 1). */
export function selectFace(faces: readonly DetectedFace[], minScore: number = MIN_FACE_SCORE): DetectedFace | undefined {
  let best: DetectedFace | undefined;
  let bestArea = -1;
  for (const f of faces) {
    if (!(f.score > minScore)) continue;
    const area = (f.x2 - f.x1) * (f.y2 - f.y1);
    if (area > bestArea) { best = f; bestArea = area; }
  }
  return best;
}

/**
 * Maps a detector's box to the box MTCNN would have drawn on the same face, since FACE_SIZE/FACE_CENTER are MTCNN
 * statistics: the mean side is multiplied by `scale`, the centre moves by (`offsetX`, `offsetY`) × mean side.
 */
export interface BoxCalibration {
  scale: number;
  offsetX: number;
  offsetY: number;
}

/**
 * SSD MobileNet v1 (face-api) → facenet-pytorch MTCNN, fitted with `fitCalibration` on 28 faces where both
 * detectors ran on the same image (testdata/ssd-vs-mtcnn.json; medians: scale 1.042, offsetX +0.024,
 * offsetY −0.029). MTCNN's boxes are a little larger and reach higher (forehead), so its centre sits higher.
 * The per-face spread between the detectors stays (scale ±7 %, centre ±3–4 % of the side, 1 σ).
 */
export const SSD_TO_MTCNN: BoxCalibration = { scale: 1.04, offsetX: 0.02, offsetY: -0.03 };

/** No change: for a detector that already draws MTCNN boxes. */
export const IDENTITY_CALIBRATION: BoxCalibration = { scale: 1, offsetX: 0, offsetY: 0 };

/**
 * Fit a calibration from pairs of boxes drawn on the same faces: per-face ratios of mean sides and centre offsets
 * in units of the detector's mean side, combined by the median (robust to the odd disagreement).
 */
export function fitCalibration(pairs: ReadonlyArray<{ detector: Box; mtcnn: Box }>): BoxCalibration {
  if (pairs.length === 0) throw new Error('fitCalibration needs at least one pair of boxes');
  const side = (b: Box) => (b.x2 - b.x1 + (b.y2 - b.y1)) / 2;
  const scale: number[] = [];
  const ox: number[] = [];
  const oy: number[] = [];
  for (const { detector: d, mtcnn: m } of pairs) {
    const s = side(d);
    scale.push(side(m) / s);
    ox.push(((m.x1 + m.x2) / 2 - (d.x1 + d.x2) / 2) / s);
    oy.push(((m.y1 + m.y2) / 2 - (d.y1 + d.y2) / 2) / s);
  }
  return { scale: median(scale), offsetX: median(ox), offsetY: median(oy) };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

export function calibrateBox(box: Box, cal: BoxCalibration): Box {
  const side = (box.x2 - box.x1 + (box.y2 - box.y1)) / 2;
  const cx = (box.x1 + box.x2) / 2 + cal.offsetX * side;
  const cy = (box.y1 + box.y2) / 2 + cal.offsetY * side;
  const hw = ((box.x2 - box.x1) / 2) * cal.scale;
  const hh = ((box.y2 - box.y1) / 2) * cal.scale;
  return { x1: cx - hw, y1: cy - hh, x2: cx + hw, y2: cy + hh };
}

// face-api and tfjs are CommonJS bundles without usable ESM types under NodeNext; these are the parts we use.
interface TfTensor { dispose(): void }
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  tensor3d(values: Uint8Array | Int32Array, shape: [number, number, number], dtype: 'int32'): TfTensor;
}
interface FaceApi {
  nets: { ssdMobilenetv1: { loadFromDisk(dir: string): Promise<void> } };
  SsdMobilenetv1Options: new (o: { minConfidence: number; maxResults?: number }) => object;
  detectAllFaces(input: TfTensor, options: object): Promise<Array<{ score: number; box: { x: number; y: number; width: number; height: number } }>>;
}

let loading: Promise<{ tf: Tf; faceapi: FaceApi }> | undefined;

/** Load tfjs on the wasm backend (binaries from node_modules, never a CDN) and face-api's SSD weights, once. */
function loadFaceApi(): Promise<{ tf: Tf; faceapi: FaceApi }> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const tf = require('@tensorflow/tfjs') as Tf;
    const wasm = require('@tensorflow/tfjs-backend-wasm') as { setWasmPaths(prefix: string): void };
    wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;
    if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise');
    await tf.ready();
    const modelDir = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
    await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
    return { tf, faceapi };
  })();
  loading.catch(() => { loading = undefined; });
  return loading;
}

export interface SsdOptions {
  /** Scores below this are not reported at all (selectFace applies MIN_FACE_SCORE afterwards). */
  minConfidence?: number;
  /** Images larger than this (longer side) are downscaled before detection; the SSD itself works at 512². */
  maxSide?: number;
}

/** face-api's SSD MobileNet v1 (MIT, weights in the npm package) on tfjs-wasm. ~0.3 s per image on 2 cores. */
export class SsdFaceDetector implements FaceDetector {
  readonly calibration = SSD_TO_MTCNN;
  readonly name = 'face-api ssd_mobilenetv1 (tfjs-wasm)';
  private constructor(private readonly api: { tf: Tf; faceapi: FaceApi }, private readonly opts: Required<SsdOptions>) {}

  static async load(opts: SsdOptions = {}): Promise<SsdFaceDetector> {
    return new SsdFaceDetector(await loadFaceApi(), { minConfidence: opts.minConfidence ?? 0.5, maxSide: opts.maxSide ?? 1024 });
  }

  async detect(rgb: RawImage & { channels: 3 }): Promise<DetectedFace[]> {
    const { tf, faceapi } = this.api;
    const s = Math.min(1, this.opts.maxSide / Math.max(rgb.width, rgb.height));
    const img = s < 1
      ? await resizeRaw(rgb, Math.max(1, Math.round(rgb.width * s)), Math.max(1, Math.round(rgb.height * s)), 'linear')
      : rgb;
    const sx = rgb.width / img.width;
    const sy = rgb.height / img.height;
    const t = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
    try {
      const found = await faceapi.detectAllFaces(t, new faceapi.SsdMobilenetv1Options({ minConfidence: this.opts.minConfidence }));
      return found.map((d) => ({
        x1: d.box.x * sx, y1: d.box.y * sy, x2: (d.box.x + d.box.width) * sx, y2: (d.box.y + d.box.height) * sy, score: d.score,
      }));
    } finally {
      t.dispose();
    }
  }
}
