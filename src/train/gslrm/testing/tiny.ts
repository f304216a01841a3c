/** Test helpers: a tiny GS-LRM training config and in-memory samples on FaceLift's 32-view rig. */
import { trainingRig } from '../../../cameras/rigs.ts';
import { parseYamlTree, type Tree } from '../../config-tree.ts';
import { parseGslrmTrainConfig, type GslrmTrainConfig } from '../config.ts';
import type { ViewSample } from '../dataset.ts';

export function tinyTree(
  over: { size?: number; layers?: number; d?: number; nIn?: number; nViews?: number; dataset?: string } = {},
): Tree {
  return parseYamlTree(
    `
model:
  class_name: gslrm.model.gslrm.GSLRM
  image_tokenizer: { image_size: ${over.size ?? 16}, patch_size: 8, in_channels: 9 }
  transformer: { d: ${over.d ?? 16}, d_head: 8, n_layer: ${over.layers ?? 1} }
  gaussians: { n_gaussians: 2, sh_degree: 0, upsampler: { upsample_factor: 1 } }
  add_refsrc_marker: false
  hard_pixelalign: true
  use_custom_plucker: true
  clip_xyz: true
training:
  runtime: { grad_accum_steps: 1, grad_clip_norm: 1.0 }
  dataset:
    dataset_path: ${over.dataset ?? 'unused.txt'}
    maximize_view_overlap: true
    num_views: ${over.nViews ?? 3}
    num_input_views: ${over.nIn ?? 2}
    background_color: white
  dataloader: { batch_size_per_gpu: 1 }
  losses: { l2_loss_weight: 1.0, perceptual_loss_weight: 0.0 }
  optimizer: { lr: 0.001, beta1: 0.9, beta2: 0.95, weight_decay: 0.05 }
  schedule: { max_fwdbwd_passes: 10, warmup: 2, l2_warmup_steps: 0 }
  checkpointing: { checkpoint_every: 5, checkpoint_dir: ckpt }
  logging: { print_every: 1, vis_every: 1000 }
`,
    'tiny',
  );
}

export function tinyConfig(over: Parameters<typeof tinyTree>[0] = {}): GslrmTrainConfig {
  return parseGslrmTrainConfig(tinyTree(over), 'tiny', '/tmp').config;
}

/** A sample with smooth random target colours on rig views `views`. */
export function syntheticSample(size: number, views: readonly number[], seed = 1): ViewSample {
  const rig = trainingRig(size, 32);
  const V = views.length;
  const rgb = new Float32Array(V * 3 * size * size);
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const a = [rnd(), rnd(), rnd()],
    b = [rnd(), rnd(), rnd()];
  for (let v = 0; v < V; v++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          rgb[((v * 3 + c) * size + y) * size + x] =
            0.5 + 0.4 * Math.sin((a[c]! * 6 * x) / size + (b[c]! * 5 * y) / size + v + c);
        }
      }
    }
  }
  return {
    dir: `synthetic-${seed}`,
    viewIndices: [...views],
    rgb,
    alpha: new Float32Array(V * size * size).fill(1),
    hasAlpha: false,
    cameras: views.map((i) => rig[i]!),
    background: [1, 1, 1],
  };
}
