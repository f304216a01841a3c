import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocGaussians, type GaussianSet } from './gaussians.ts';
import { FACELIFT_FILTERS, GRADIO_FILTERS, filterGaussians, filterRule } from './filters.ts';

/** One Gaussian per row: [x, y, z, max scale, opacity]. Defaults: a small opaque Gaussian at the origin. */
function scene(rows: Array<Partial<{ x: number; y: number; z: number; scale: number; opacity: number }>>): GaussianSet {
  const g = allocGaussians(rows.length);
  rows.forEach((r, i) => {
    g.means.set([r.x ?? 0, r.y ?? 0, r.z ?? 0], 3 * i);
    g.scales.set([Math.log(0.01), Math.log(r.scale ?? 0.01), Math.log(0.005)], 3 * i);
    const o = r.opacity ?? 0.9;
    g.opacities[i] = Math.log(o / (1 - o));
    g.sh[3 * i] = i; // identifies the Gaussian after filtering
  });
  return g;
}
const rules = (g: GaussianSet, o = FACELIFT_FILTERS) => Array.from({ length: g.count }, (_, i) => filterRule(g, i, o));

test('rule 1, opacity: kept just above 0.04, removed at and just below', () => {
  const g = scene([{ opacity: 0.0401 }, { opacity: 0.0399 }, { opacity: 0.02 }]);
  assert.deepEqual(rules(g), [0, 1, 1]);
});

test('rule 2, scale: max scale just below 0.1 kept, just above removed unless z > 0; z = 0 is not above the plane', () => {
  const g = scene([{ scale: 0.0999, z: -0.1 }, { scale: 0.1001, z: -0.1 }, { scale: 0.5, z: 0.001 }, { scale: 0.1001, z: 0 }]);
  assert.deepEqual(rules(g), [0, 2, 0, 2]);
  // gradio threshold 0.2
  assert.deepEqual(rules(scene([{ scale: 0.15, z: -0.1 }, { scale: 0.2001, z: -0.1 }]), GRADIO_FILTERS), [0, 2]);
});

test('rule 3, corner floaters: |x|, |y| > 0.6 and z < −0.6 in all four corners; each condition at its boundary', () => {
  const rows = [];
  for (const sx of [1, -1]) for (const sy of [1, -1]) rows.push({ x: 0.6001 * sx, y: 0.6001 * sy, z: -0.6001 });
  rows.push({ x: 0.5999, y: 0.6001, z: -0.6001 }, { x: 0.6001, y: -0.5999, z: -0.6001 }, { x: -0.6001, y: 0.6001, z: -0.5999 });
  assert.deepEqual(rules(scene(rows)), [3, 3, 3, 3, 0, 0, 0]);
  // gradio: 0.75
  assert.deepEqual(rules(scene([{ x: 0.7, y: 0.7, z: -0.7 }, { x: 0.7501, y: -0.7501, z: -0.7501 }]), GRADIO_FILTERS), [0, 3]);
});

test('rule 4, crop box [−0.91, 0.91]² × [−1, 1], inclusive', () => {
  const g = scene([{ x: 0.9099 }, { x: 0.9101 }, { y: -0.9101 }, { y: -0.9099 }, { z: 0.9999 }, { z: 1.0001 }, { z: -1.0001, scale: 0.01 }, { x: 0.91, y: -0.91 }]);
  assert.deepEqual(rules(g), [0, 4, 4, 0, 0, 4, 4, 0]);
});

test('filterGaussians: rules in order, report per rule, survivors in original order', () => {
  const g = scene([{}, { opacity: 0.01, scale: 0.5, z: -0.5 }, { scale: 0.5, z: -0.5 }, { x: 0.7, y: 0.7, z: -0.7 }, { x: 2 }, { z: 0.5, scale: 0.5 }]);
  const { gaussians, report } = filterGaussians(g);
  assert.deepEqual(report, { kept: 2, removed: { opacity: 1, scale: 1, floater: 1, box: 1 } });
  assert.deepEqual(Array.from(gaussians.sh.filter((_, i) => i % 3 === 0)), [0, 5]);
  assert.equal(filterGaussians(g, { opacityThreshold: 0 }).report.removed.opacity, 0);
});
