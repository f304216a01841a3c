import { performance } from 'node:perf_hooks';
import { UserError } from '../util/errors.ts';
import { compositeOnWhite } from './composite.ts';
import type { CutoutStyle } from './composite.ts';
import { OUTPUT_SIZE, applyCropPlan, planFaceCrop } from './crop.ts';
import type { Box, CropPlan } from './crop.ts';
import { IDENTITY_CALIBRATION, MIN_FACE_SCORE, SsdFaceDetector, calibrateBox, selectFace } from './detect.ts';
import { MtcnnDetector } from './mtcnn.ts';
import type { BoxCalibration, DetectedFace, FaceDetector } from './detect.ts';
import { alphaOf, loadImage, resizeBicubicPil, resizeRaw, rgbOf } from './image.ts';
import type { LoadOptions, LoadedImage, RawImage } from './image.ts';
import type { Matter } from './matting.ts';

export interface PreprocessOptions {
  /** Face detection + similarity crop (spec §3); false: resize to 512² (spec §3.1). Default true. */
  autoCrop?: boolean;
  /** Background matting. Absent: no background removal (inputs that carry alpha are still composited). */
  matter?: Matter;
  /** Absent: MTCNN as the reference runs it (loaded once per process). */
  detector?: FaceDetector;
  /** Detector box → MTCNN-equivalent box. Default: the detector's own (identity for MTCNN, SSD_TO_MTCNN for SSD). */
  calibration?: BoxCalibration;
  /** Default 0.8, as the reference. */
  minFaceScore?: number;
  /** How a model's matte is composited; default: the model's own choice, else 'rembg' (the reference's). */
  cutout?: CutoutStyle;
  load?: LoadOptions;
}

export interface PreprocessResult {
  /** The 512×512 RGB conditioning image (`input.png`). */
  image: RawImage & { channels: 3 };
  /** The detector's chosen face, in the coordinates of the decoded image (EXIF-rotated, × source.scale). */
  faceBox?: DetectedFace;
  /** That box after calibration: what the crop used. */
  cropBox?: Box;
  cropPlan?: CropPlan;
  /** True when the spec §3.2 fallback (composited image resized to 512², LANCZOS) produced the image. */
  usedFallback: boolean;
  fallbackReason?: string;
  /** Where the alpha came from: a matting model, the file's own alpha, or nowhere. */
  matting: 'model' | 'input-alpha' | 'none';
  source: LoadedImage['source'];
  timings: { loadMs: number; mattingMs: number; detectMs: number; cropMs: number; totalMs: number };
}

const defaultDetectors = new Map<DetectorChoice, Promise<FaceDetector>>();

/**
 * Photo → the 512×512 RGB image the diffusion model is conditioned on (spec/pipeline.md §2–3): decode, matte
 * (or use the file's alpha), composite on white, then either detect + similarity-crop or plain resize. Like the
 * reference, a failure after decoding (no face found, matting error) falls back to a plain 512² resize, but RGB and
 * composited on white (the reference's fallback returns RGBA, which its diffusion step cannot use).
 * Unreadable files throw a UserError.
 */
export async function preprocess(input: string | Uint8Array, opts: PreprocessOptions = {}): Promise<PreprocessResult> {
  const autoCrop = opts.autoCrop ?? true;
  const t0 = performance.now();
  const loaded = await loadImage(input, opts.load);
  const rgb = rgbOf(loaded.rgba);
  const t1 = performance.now();

  let alpha: Float32Array | undefined;
  let matting: PreprocessResult['matting'] = 'none';
  let failure: string | undefined;
  let style: CutoutStyle = 'straight';
  if (loaded.hasAlpha) {
    alpha = alphaOf(loaded.rgba);
    matting = 'input-alpha';
  } else if (opts.matter) {
    try {
      alpha = await opts.matter.matte(rgb);
      matting = 'model';
      style = opts.cutout ?? opts.matter.cutout ?? 'rembg';
    } catch (e) {
      if (e instanceof UserError) throw e;
      failure = `background matting failed (${opts.matter.name}): ${message(e)}`;
    }
  }
  const t2 = performance.now();
  const white = alpha ? compositeOnWhite(rgb, alpha, style) : rgb;

  const base = { matting, source: loaded.source };
  const timings = (detectMs: number, t: number) => ({
    loadMs: t1 - t0, mattingMs: t2 - t1, detectMs, cropMs: performance.now() - t, totalMs: performance.now() - t0,
  });

  if (failure !== undefined) {
    // The reference's last resort when rembg fails: the original photo, resized.
    const t = performance.now();
    const image = await resizeRaw(rgb, OUTPUT_SIZE, OUTPUT_SIZE, 'lanczos3');
    return { ...base, image, usedFallback: true, fallbackReason: failure, timings: timings(0, t) };
  }
  if (!autoCrop) {
    const t = performance.now();
    const image = await resizeBicubicPil(white, OUTPUT_SIZE, OUTPUT_SIZE);
    return { ...base, image, usedFallback: false, timings: timings(0, t) };
  }

  const detector = opts.detector ?? await loadDefaultDetector();
  const t3 = performance.now();
  let faceBox: DetectedFace | undefined;
  let reason: string;
  try {
    const faces = await detector.detect(white);
    faceBox = selectFace(faces, opts.minFaceScore ?? MIN_FACE_SCORE);
    if (faceBox) {
      const t4 = performance.now();
      const cropBox = calibrateBox(faceBox, opts.calibration ?? detector.calibration ?? IDENTITY_CALIBRATION);
      const cropPlan = planFaceCrop(white.width, white.height, cropBox);
      const image = await applyCropPlan(white, cropPlan);
      return { ...base, image, faceBox, cropBox, cropPlan, usedFallback: false, timings: timings(t4 - t3, t4) };
    }
    const best = faces.reduce((m, f) => Math.max(m, f.score), 0);
    reason = faces.length === 0
      ? 'no face found'
      : `no face with score > ${opts.minFaceScore ?? MIN_FACE_SCORE} (best ${best.toFixed(2)})`;
  } catch (e) {
    reason = `face crop failed: ${message(e)}`;
  }
  const t5 = performance.now();
  const image = await resizeRaw(white, OUTPUT_SIZE, OUTPUT_SIZE, 'lanczos3');
  return { ...base, image, ...(faceBox ? { faceBox } : {}), usedFallback: true, fallbackReason: reason, timings: timings(t5 - t3, t5) };
}

export type DetectorChoice = 'mtcnn' | 'ssd';

/**
 * A built-in detector, loaded once per process (a failed load is retried next time): MTCNN as the reference runs
 * it (default), or face-api's SSD with its boxes calibrated to MTCNN's.
 */
export function loadDefaultDetector(choice: DetectorChoice = 'mtcnn'): Promise<FaceDetector> {
  let d = defaultDetectors.get(choice);
  if (!d) {
    d = choice === 'ssd' ? SsdFaceDetector.load() : MtcnnDetector.load();
    defaultDetectors.set(choice, d);
    d.catch(() => defaultDetectors.delete(choice));
  }
  return d;
}

function message(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}
