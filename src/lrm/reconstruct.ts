/**
 * GS-LRM end to end (spec gslrm.md §2–4, pipeline.md §5): posed RGB views → 9-channel input → transformer →
 * one Gaussian per input pixel plus the global ones, decoded with hard pixel alignment.
 */
import type { Provider } from '../core/index.ts';
import type { Camera } from '../cameras/camera.ts';
import type { GaussianSet } from '../splat/gaussians.ts';
import { UserError } from '../util/errors.ts';
import { gslrmDims, type GslrmConfig } from './config.ts';
import { decodeGaussians } from './decode.ts';
import { GslrmNetwork, type ForwardStage } from './network.ts';
import { computeRays, posedInput } from './rays.ts';
import { patchify } from './tokens.ts';
import type { GslrmWeights } from './weights.ts';

/** RGB views [V, 3, H, W] in [0, 1] (alpha already composited). */
export interface Views {
  views: number;
  height: number;
  width: number;
  rgb: Float32Array;
}

export interface GslrmModel {
  config: GslrmConfig;
  weights: GslrmWeights;
}

export interface ReconstructOptions {
  /** Attention query chunk (default network.ts DEFAULT_CHUNK). */
  chunk?: number;
  headChunk?: number;
  /** Each attention chunk as one ONNX `Attention` node. */
  fused?: boolean;
  threads?: number;
  /** Execution provider (default 'auto': CUDA when onnxruntime-node's CUDA library is installed, else CPU). */
  provider?: Provider | 'auto';
  /** The transformer's linear layers in int8 (core/quantize.ts; fidelity in BENCHMARKS.md § int8). */
  int8?: boolean;
  /** Called after the embedding (0) and after each transformer layer (1…n) out of n + 1 steps. */
  onProgress?: (done: number, total: number) => void;
  /** Sees every intermediate of the forward pass (tests, diagnostics). */
  onStage?: (stage: ForwardStage) => void;
}

export interface Reconstruction {
  /** Global Gaussians first, then one per input pixel in token order; unfiltered. */
  gaussians: GaussianSet;
  /** Ray parameter of every pixel Gaussian (xyz = o + t·d). */
  pixelT: Float32Array;
}

/** Checks that views, cameras and model fit together; throws a UserError saying what does not. */
export function checkReconstructInput(views: Views, cameras: readonly Camera[], config: GslrmConfig): void {
  const S = config.image_tokenizer.image_size;
  if (cameras.length !== views.views) {
    throw new UserError(`${views.views} view image(s) but ${cameras.length} camera(s); give one camera per image, in the same order`);
  }
  if (views.width !== S || views.height !== S) {
    throw new UserError(`views are ${views.width}×${views.height}, but the GS-LRM config expects ${S}×${S} images (resize them, or use a config with image_tokenizer.image_size: ${views.width})`);
  }
  cameras.forEach((c, i) => {
    if (c.width !== views.width || c.height !== views.height) {
      throw new UserError(`camera ${i} is for ${c.width}×${c.height} images, but the views are ${views.width}×${views.height}`);
    }
  });
  if (views.rgb.length !== views.views * 3 * S * S) throw new RangeError(`views.rgb has ${views.rgb.length} values, expected ${views.views}×3×${S}×${S}`);
}

export async function reconstruct(views: Views, cameras: readonly Camera[], model: GslrmModel, opts: ReconstructOptions = {}): Promise<Reconstruction> {
  checkReconstructInput(views, cameras, model.config);
  const dims = gslrmDims(model.config);
  const rays = computeRays(cameras);
  const patches = patchify(posedInput(views.rgb, rays), views.views, 9, views.height, views.width, dims.patch);
  const net = await GslrmNetwork.create(model.config, model.weights, {
    views: views.views,
    ...(opts.chunk ? { chunk: opts.chunk } : {}),
    ...(opts.headChunk ? { headChunk: opts.headChunk } : {}),
    ...(opts.fused ? { fused: true } : {}),
    ...(opts.threads ? { threads: opts.threads } : {}),
    ...(opts.provider ? { provider: opts.provider } : {}),
    ...(opts.int8 ? { int8: true } : {}),
  });
  const total = dims.nLayer + 1;
  let raw: Float32Array;
  try {
    raw = await net.forward(patches, {
      onStage: (s) => {
        opts.onStage?.(s);
        if (s.kind === 'embed') opts.onProgress?.(0, total);
        else if (s.kind === 'layer') opts.onProgress?.(s.layer + 1, total);
      },
    });
  } finally {
    await net.release();
  }
  return decodeGaussians(raw, dims.nGlobal, rays, dims.patch);
}
