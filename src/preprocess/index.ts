/** Preprocessing stage of `facelift infer`: photo → 512×512 RGB conditioning image (spec/pipeline.md §2–3). */
export { preprocess, loadDefaultDetector } from './preprocess.ts';
export type { DetectorChoice } from './preprocess.ts';
export { MtcnnDetector, MTCNN_DIR } from './mtcnn.ts';
export type { PreprocessOptions, PreprocessResult } from './preprocess.ts';
export { loadImage, sniffFormat, DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE } from './image.ts';
export type { LoadedImage, LoadOptions, RawImage } from './image.ts';
export { OnnxMatter, MATTING_SOURCES, DEFAULT_MATTING_MODEL } from './matting.ts';
export { SelfieMatter, SELFIE_SOURCE, selfieModelPath } from './selfie.ts';
export type { Matter, MattingModel, MattingModelSource } from './matting.ts';
export { SsdFaceDetector, selectFace, calibrateBox, fitCalibration, SSD_TO_MTCNN, IDENTITY_CALIBRATION, MIN_FACE_SCORE } from './detect.ts';
export type { FaceDetector, DetectedFace, BoxCalibration } from './detect.ts';
export { planFaceCrop, applyCropPlan, FACE_SIZE, FACE_CENTER, OUTPUT_SIZE } from './crop.ts';
export type { Box, CropPlan, CropTarget } from './crop.ts';
export { compositeOnWhite } from './composite.ts';
export type { CutoutStyle } from './composite.ts';
