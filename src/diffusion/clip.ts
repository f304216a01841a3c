/**
 * CLIP encoders (transformers `CLIPVisionModelWithProjection` and `CLIPTextModel`) on the compute core.
 *
 * Vision: patch conv (no bias) → [CLS ‖ patches] + position embedding → pre-LN → pre-norm encoder layers →
 * post-LN of the CLS token → visual projection (no bias) = `image_embeds`.
 * Text: token + position embedding → encoder layers with a causal mask → final LN = `last_hidden_state`
 * (SD-2.x's 23-layer tower, so this is OpenCLIP's penultimate layer, as SD 2.x conditions on).
 */
import {
  add, concat, conv2d, expand, gather, gelu, matmul, mergeHeads, mul, narrow, reshape, sdpa, sigmoid, softmax, splitHeads, transpose, type Graph, type Tensor,
} from '../core/index.ts';
import type { ClipTextConfig, ClipVisionConfig } from './config.ts';
import { declareClipTextParams, declareClipVisionParams, type ClipLayerP, type ClipTextParams, type ClipVisionParams } from './clip-params.ts';
import { linear, ln } from './layers.ts';
import type { Taps } from './unet.ts';

function act(x: Tensor, kind: 'gelu' | 'quick_gelu'): Tensor {
  return kind === 'gelu' ? gelu(x) : mul(x, sigmoid(mul(x, 1.702)));
}


/** One pre-norm encoder layer; `mask` is an additive [T, T] mask (causal text attention) or null. */
function encoderLayer(x: Tensor, p: ClipLayerP<Tensor>, nHeads: number, eps: number, kind: 'gelu' | 'quick_gelu', mask: Tensor | null): Tensor {
  const h = ln(x, p.layerNorm1, eps);
  const q = splitHeads(linear(h, p.qProj), nHeads);
  const k = splitHeads(linear(h, p.kProj), nHeads);
  const v = splitHeads(linear(h, p.vProj), nHeads);
  let a: Tensor;
  if (mask) {
    const d = q.shape[3]!;
    a = matmul(softmax(add(matmul(mul(q, 1 / Math.sqrt(d)), transpose(k, [0, 1, 3, 2])), mask), -1), v);
  } else {
    a = sdpa(q, k, v);
  }
  const x1 = add(x, linear(mergeHeads(a), p.outProj));
  return add(x1, linear(act(linear(ln(x1, p.layerNorm2, eps), p.fc1), kind), p.fc2));
}

export class ClipVision {
  readonly p: ClipVisionParams<Tensor>;

  constructor(g: Graph, readonly config: ClipVisionConfig) {
    this.p = declareClipVisionParams(g, config);
  }

  /** `pixels` [N, 3, S, S] (CLIP-normalised) → image_embeds [N, projection_dim]. */
  forward(pixels: Tensor, taps?: Taps): Tensor {
    const c = this.config;
    const p = this.p;
    const n = pixels.shape[0]!;
    const grid = c.imageSize / c.patchSize;
    const patches = transpose(reshape(conv2d(pixels, p.patchEmbedding, null, { stride: c.patchSize }), [n, c.hiddenSize, grid * grid]), [0, 2, 1]);
    const cls = expand(reshape(p.classEmbedding, [1, 1, c.hiddenSize]), [n, 1, c.hiddenSize]);
    const emb = add(concat([cls, patches], 1), p.positionEmbedding);
    let h = ln(emb, p.preLayerNorm, c.layerNormEps);
    if (taps) Object.assign(taps, { embeddings: emb, 'hidden_states.0': h });
    p.layers.forEach((l, i) => {
      h = encoderLayer(h, l, c.numHeads, c.layerNormEps, c.hiddenAct, null);
      if (taps) taps[`hidden_states.${i + 1}`] = h;
    });
    const pooled = ln(reshape(narrow(h, 1, 0, 1), [n, c.hiddenSize]), p.postLayerNorm, c.layerNormEps);
    if (taps) Object.assign(taps, { last_hidden_state: h, pooled_output: pooled });
    return linear(pooled, p.visualProjection);
  }
}

export class ClipText {
  readonly p: ClipTextParams<Tensor>;

  constructor(private readonly g: Graph, readonly config: ClipTextConfig) {
    this.p = declareClipTextParams(g, config);
  }

  /** `ids` int64 [N, T] → last_hidden_state [N, T, hidden]. */
  forward(ids: Tensor): Tensor {
    const c = this.config;
    const t = ids.shape[1]!;
    const tok = gather(this.p.tokenEmbedding, ids, 0);
    let h = add(tok, narrow(this.p.positionEmbedding, 0, 0, t));
    // Additive causal mask: token i sees tokens ≤ i. A large finite negative keeps softmax NaN-free.
    const m = new Float32Array(t * t);
    for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = -3.4028234663852886e38;
    const mask = this.g.constant(m, [t, t]);
    for (const l of this.p.layers) h = encoderLayer(h, l, c.numHeads, c.layerNormEps, c.hiddenAct, mask);
    return ln(h, this.p.finalLayerNorm, c.layerNormEps);
  }
}
