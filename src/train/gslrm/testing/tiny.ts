/** Test helpers: a tiny GS-LRM training config and in-memory samples on FaceLift's 32-view rig. */
import { trainingRig } from '../../../cameras/rigs.ts';
import { parseYamlTree, type Tree } from '../../config-tree.ts';
import { parseGslrmTrainConfig, type GslrmTrainConfig } from '../config.ts';
import type { ViewSample } from '../dataset.ts';
import { smallConfigYaml } from './fixtures.ts';

export function tinyTree(
  over: { size?: number; layers?: number; d?: number; nIn?: number; nViews?: number; dataset?: string } = {},
): Tree {
  const yaml = smallConfigYaml({
    dataset: over.dataset ?? 'unused.txt', checkpointDir: 'ckpt', size: over.size ?? 16, d: over.d ?? 16, dHead: 8,
    layers: over.layers ?? 1, nIn: over.nIn ?? 2, nViews: over.nViews ?? 3, passes: 10, checkpointEvery: 5,
  });
  return parseYamlTree(yaml, 'tiny');
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
