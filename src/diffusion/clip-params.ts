/**
 * Parameter trees of the transformers CLIP models, in state-dict order:
 * `CLIPVisionModelWithProjection` (the image encoder, ViT-H/14 + visual_projection) and `CLIPTextModel`
 * (the SD-2.x text encoder used for the fixed prompt embeddings).
 */
import type { ClipTextConfig, ClipVisionConfig } from './config.ts';
import { linearP, normP, scope, type LinearP, type NormP, type ParamDeclarer } from './params.ts';

/** `CLIPEncoderLayer`: pre-LN self-attention (q/k/v/out with bias) and MLP. */
export interface ClipLayerP<P> {
  kProj: LinearP<P>;
  vProj: LinearP<P>;
  qProj: LinearP<P>;
  outProj: LinearP<P>;
  layerNorm1: NormP<P>;
  fc1: LinearP<P>;
  fc2: LinearP<P>;
  layerNorm2: NormP<P>;
}

function layersP<P>(d: ParamDeclarer<P>, n: number, hidden: number, inner: number): ClipLayerP<P>[] {
  return Array.from({ length: n }, (_, i) => {
    const l = scope(d, `encoder.layers.${i}`);
    const a = scope(l, 'self_attn');
    return {
      kProj: linearP(a, 'k_proj', hidden, hidden),
      vProj: linearP(a, 'v_proj', hidden, hidden),
      qProj: linearP(a, 'q_proj', hidden, hidden),
      outProj: linearP(a, 'out_proj', hidden, hidden),
      layerNorm1: normP(l, 'layer_norm1', hidden),
      fc1: linearP(l, 'mlp.fc1', hidden, inner),
      fc2: linearP(l, 'mlp.fc2', inner, hidden),
      layerNorm2: normP(l, 'layer_norm2', hidden),
    };
  });
}

export interface ClipVisionParams<P> {
  classEmbedding: P;
  /** Conv2d weight [hidden, channels, patch, patch], no bias. */
  patchEmbedding: P;
  positionEmbedding: P;
  preLayerNorm: NormP<P>;
  layers: ClipLayerP<P>[];
  postLayerNorm: NormP<P>;
  /** Linear hidden → projection_dim, no bias. */
  visualProjection: LinearP<P>;
}

export function declareClipVisionParams<P>(d: ParamDeclarer<P>, c: ClipVisionConfig): ClipVisionParams<P> {
  const v = scope(d, 'vision_model');
  const h = c.hiddenSize;
  const tokens = (c.imageSize / c.patchSize) ** 2 + 1;
  return {
    classEmbedding: v.param('embeddings.class_embedding', [h]),
    patchEmbedding: v.param('embeddings.patch_embedding.weight', [h, c.numChannels, c.patchSize, c.patchSize]),
    positionEmbedding: v.param('embeddings.position_embedding.weight', [tokens, h]),
    // "pre_layrnorm" is transformers' spelling.
    preLayerNorm: normP(v, 'pre_layrnorm', h),
    layers: layersP(v, c.numLayers, h, c.intermediateSize),
    postLayerNorm: normP(v, 'post_layernorm', h),
    visualProjection: linearP(d, 'visual_projection', h, c.projectionDim, false),
  };
}

export interface ClipTextParams<P> {
  tokenEmbedding: P;
  positionEmbedding: P;
  layers: ClipLayerP<P>[];
  finalLayerNorm: NormP<P>;
}

export function declareClipTextParams<P>(d: ParamDeclarer<P>, c: ClipTextConfig): ClipTextParams<P> {
  const t = scope(d, 'text_model');
  const h = c.hiddenSize;
  return {
    tokenEmbedding: t.param('embeddings.token_embedding.weight', [c.vocabSize, h]),
    positionEmbedding: t.param('embeddings.position_embedding.weight', [c.maxPositions, h]),
    layers: layersP(t, c.numLayers, h, c.intermediateSize),
    finalLayerNorm: normP(t, 'final_layer_norm', h),
  };
}
