/** Test-only: the golden inputs' `c2w [1,V,4,4]` and `fxfycxcy [1,V,4]` as Camera objects. */
import { invertRigid, type Camera } from '../../cameras/camera.ts';
import { f32, type GoldenTensor } from './golden.ts';

export function goldenCameras(inputs: Map<string, GoldenTensor>): Camera[] {
  const c2w = f32(inputs, 'c2w');
  const k = f32(inputs, 'fxfycxcy');
  const [, , , H, W] = inputs.get('image')!.shape;
  const V = k.length / 4;
  return Array.from({ length: V }, (_, v) => {
    const m = Float64Array.from(c2w.subarray(16 * v, 16 * v + 16));
    return { width: W, height: H, fx: k[4 * v], fy: k[4 * v + 1], cx: k[4 * v + 2], cy: k[4 * v + 3], c2w: m, w2c: invertRigid(m) };
  });
}
