/**
 * Everything `runInference` needs, loaded once per process and reused for every image: the multi-view diffusion
 * pipeline, the GS-LRM weights, the matting model, the splat renderer (worker threads).
 */
import { totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { CUDA_MISSING, cudaAvailable, type Provider } from '../core/index.ts';
import { MvDiffusionPipeline } from '../diffusion/pipeline.ts';
import { snapshotDownload, type SnapshotProgress } from '../io/hf-hub.ts';
import { loadGslrmConfig } from '../lrm/config.ts';
import type { GslrmModel } from '../lrm/reconstruct.ts';
import { loadGslrmWeights } from '../lrm/weights.ts';
import {
  MATTING_SOURCES,
  OnnxMatter,
  SELFIE_SOURCE,
  SelfieMatter,
  loadDefaultDetector,
  type DetectorChoice,
  type FaceDetector,
  type Matter,
  type MattingModel,
} from '../preprocess/index.ts';
import { SplatRenderer } from '../splat/renderer.ts';
import { UserError } from '../util/errors.ts';
import { StageClock, type ProgressListener } from './events.ts';
import { findPromptEmbeds, type PromptEmbedsSource } from './prompt-embeds.ts';
import { DEMO_NOTICE, faceliftCacheDir, resolveWeights, type ModelChoice, type WeightsLayout } from './weights.ts';

/** ONNX models fetched or given (MODNet, U²-Net), the packaged selfie segmenter, or no background removal. */
export type MattingChoice = MattingModel | 'selfie' | 'none';

export interface LoadModelsOptions {
  /** `--weights DIR` (official layout); absent: see resolveWeights. */
  weights?: string;
  /** FaceLift's models, the shipped demo models, or (default 'auto') FaceLift's when present locally, else the demo. */
  model?: ModelChoice;
  /** FaceLift's clr_embeds.pt; absent: looked up in the weights folder, else computed from text_encoder and cached. */
  promptEmbeds?: string;
  /** Keep the UNet weights in fp16 (half its ~3.5 GB; computed in fp32). */
  unetFp16Weights?: boolean;
  /** Linear layers of both models in int8 (weights quantized at load time from the checkpoints; BENCHMARKS § int8). */
  int8?: boolean;
  /**
   * Background matting: 'modnet' (fetched once into the HF cache), 'u2net', 'selfie' (MediaPipe's selfie segmenter,
   * shipped in an npm package), 'none'. Absent: MODNet when it is cached or can be fetched, else the selfie
   * segmenter, with a notice (so that a first run offline still removes the background).
   */
  matting?: MattingChoice;
  /** A local model file for `matting` instead of the download or the package (ONNX; .tflite for the selfie model). */
  mattingModel?: string;
  /** A face detector to use instead of the built-in ones (tests, other detectors). */
  detector?: FaceDetector;
  /** The built-in detector when `detector` is not given: MTCNN as the reference (default) or face-api's SSD. */
  faceDetector?: DetectorChoice;
  /** onnxruntime intra-op threads (default: ORT's choice). */
  threads?: number;
  /**
   * Where the networks run: 'cuda' (onnxruntime-node's CUDA provider; refused in one line when it is not installed),
   * 'cpu', or 'auto' (default: CUDA when installed, else CPU).
   */
  device?: Provider | 'auto';
  /** Rasterizer worker threads (default: all cores). */
  renderThreads?: number;
  /**
   * Release the diffusion sessions after each image's sampling, so the UNet's working memory is free while GS-LRM
   * runs (sessions are rebuilt for the next image). Default: for 512² models on machines with less than 48 GiB.
   */
  releaseSessions?: boolean;
  /** facelift's cache (computed prompt embeddings); default faceliftCacheDir(). */
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
}

export interface FaceliftModels {
  weights: WeightsLayout;
  /** Whose models these are ('demo': the shipped small ones). */
  model: 'official' | 'demo';
  /** Plain-words notes for the user about what was chosen for them (demo models, no matting, …). */
  notices: string[];
  diffusion: MvDiffusionPipeline;
  gslrm: GslrmModel;
  promptEmbeds: PromptEmbedsSource;
  matter?: Matter;
  /** The matting model used, and where it came from (a file, or the npm package that ships it). */
  mattingModel?: { kind: Exclude<MattingChoice, 'none'>; path: string };
  detector?: FaceDetector;
  renderer: SplatRenderer;
  /** Side of the generated views, the GS-LRM input, the renders and the video (512 for the official models). */
  imageSize: number;
  threads?: number;
  /** What `device` asked for (sessions fall back to the CPU under 'auto'). */
  device: Provider | 'auto';
  /** The GS-LRM's linear layers run in int8. */
  int8: boolean;
  releaseSessions: boolean;
  close(): Promise<void>;
}

async function mattingPath(kind: MattingModel, explicit: string | undefined, onDownload?: (p: SnapshotProgress) => void): Promise<string> {
  if (explicit) return explicit;
  const src = MATTING_SOURCES[kind];
  if (!src.repo) {
    throw new UserError(`the ${kind} matting model has no known download location; give the file with --matting-model PATH (${src.description}, ${src.licence}), or use --matting modnet`);
  }
  try {
    const r = await snapshotDownload({ repo: src.repo, allowPatterns: [src.file], ...(onDownload ? { onProgress: onDownload } : {}) });
    return join(r.dir, src.file);
  } catch (e) {
    throw new UserError(
      `the ${kind} matting model (${src.repo}/${src.file}, ~${src.approxMB} MB, ${src.licence}) is not cached and could not be fetched: ` +
      `${String((e as Error).message).split('\n')[0]}. Give a local file with --matting-model PATH, or run with --matting none ` +
      '(no background removal: photos with a plain light background or a transparent PNG work best then)',
      { cause: e },
    );
  }
}

interface OpenedMatter {
  matter: Matter & { dispose(): Promise<void> };
  source: NonNullable<FaceliftModels['mattingModel']>;
}

async function openMatter(choice: MattingChoice, file?: string, threads?: number): Promise<OpenedMatter | undefined> {
  if (choice === 'selfie') {
    const matter = await SelfieMatter.open({ ...(file ? { modelPath: file } : {}), ...(threads ? { threads } : {}) });
    return { matter, source: { kind: 'selfie', path: file ?? SELFIE_SOURCE } };
  }
  if (choice === 'none' || !file) return undefined;
  return { matter: await OnnxMatter.open(choice, file), source: { kind: choice, path: file } };
}

/** Resolves and loads every model; emits 'download' and 'load' progress. */
export async function loadModels(opts: LoadModelsOptions = {}, onProgress?: ProgressListener): Promise<FaceliftModels> {
  const env = opts.env ?? process.env;
  const device = opts.device ?? 'auto';
  if (device === 'cuda' && !cudaAvailable()) throw new UserError(CUDA_MISSING);
  const dl: { clock?: StageClock } = {};
  const onDownload = (p: SnapshotProgress) => {
    dl.clock ??= new StageClock(onProgress, 'download', Math.max(1, p.totalBytes));
    dl.clock.emit(p.bytes, p.file, Math.max(1, p.totalBytes));
  };
  const downloaded = () => { dl.clock?.done(); delete dl.clock; };
  const weights = await resolveWeights({
    ...(opts.weights ? { dir: opts.weights } : {}), ...(opts.model ? { model: opts.model } : {}), env, onDownload,
  });
  downloaded();
  const notices: string[] = weights.model === 'demo' ? [DEMO_NOTICE] : [];

  let matting: MattingChoice = opts.matting ?? 'modnet';
  let mattingFile: string | undefined;
  try {
    if (matting === 'selfie') mattingFile = opts.mattingModel;
    else if (matting !== 'none') mattingFile = await mattingPath(matting, opts.mattingModel, onDownload);
  } catch (e) {
    if (opts.matting !== undefined || !(e instanceof UserError)) throw e;
    matting = 'selfie';
    notices.push('background removed with the bundled selfie segmenter: the MODNet matting model is not cached and ' +
      'could not be fetched (with network, or --matting-model FILE, MODNet is used; its edges are finer)');
  }
  downloaded();

  const load = new StageClock(onProgress, 'load', 5);
  const threads = opts.threads;
  const gslrmConfig = loadGslrmConfig(weights.gslrmConfig);
  const promptEmbeds = findPromptEmbeds(weights.root, opts.promptEmbeds);
  load.emit(1, `multi-view diffusion${promptEmbeds.path ? '' : ' (prompt embeddings from text_encoder)'}`);
  const diffusion = await MvDiffusionPipeline.load(weights.pipeckpts, {
    ...(promptEmbeds.path ? { promptEmbeds: promptEmbeds.path } : { cacheDir: join(opts.cacheDir ?? faceliftCacheDir(env), 'prompt-embeds') }),
    ...(opts.unetFp16Weights ? { unetFp16Weights: true } : {}),
    ...(opts.int8 ? { int8: true } : {}),
    ...(threads ? { threads } : {}),
    provider: device,
  });
  const imageSize = diffusion.imageSize;
  try {
    if (gslrmConfig.image_tokenizer.image_size !== imageSize) {
      throw new UserError(`the GS-LRM config (${weights.gslrmConfig}) takes ${gslrmConfig.image_tokenizer.image_size}² views but the diffusion model ` +
        `(${weights.pipeckpts}) makes ${imageSize}² views; put a config.yaml with image_tokenizer.image_size: ${imageSize} beside ${basename(weights.gslrmCheckpoint)}`);
    }
    load.emit(2, `GS-LRM ${basename(weights.gslrmCheckpoint)}`);
    const gslrm: GslrmModel = { config: gslrmConfig, weights: await loadGslrmWeights(weights.gslrmCheckpoint, gslrmConfig) };
    load.emit(3, 'matting');
    const matter = await openMatter(matting, mattingFile, threads);
    load.emit(4, 'renderer');
    const renderer = await SplatRenderer.create(opts.renderThreads ? { threads: opts.renderThreads } : {});
    load.done();
    return {
      weights, model: weights.model, notices, diffusion, gslrm, promptEmbeds, renderer, imageSize,
      // Only official-size models have working memory worth giving back; tiny test models rebuild faster than they run.
      releaseSessions: opts.releaseSessions ?? (imageSize >= 512 && totalmem() < 48 * 2 ** 30),
      ...(matter ? { matter: matter.matter, mattingModel: matter.source } : {}),
      detector: opts.detector ?? (await loadDefaultDetector(opts.faceDetector ?? 'mtcnn')),
      ...(threads ? { threads } : {}),
      device,
      int8: opts.int8 ?? false,
      async close() {
        await diffusion.close();
        await renderer.close();
        if (matter) await matter.matter.dispose();
      },
    };
  } catch (e) {
    await diffusion.close();
    throw e;
  }
}
