/**
 * GS-LRM image losses (spec gslrm.md §7) as value-and-gradient functions of the renders, so that their gradients
 * feed the rasterizer backward. Images are planar [V, 3, S, S].
 */

/** mean((render − target)²) over everything; adds `weight`·∂/∂render into `dRender`. */
export function l2Loss(render: Float32Array, target: Float32Array, dRender: Float32Array, weight: number): number {
  if (render.length !== target.length) throw new RangeError(`l2Loss: render has ${render.length} values, target ${target.length}`);
  const n = render.length;
  let sum = 0;
  const k = (2 * weight) / n;
  for (let i = 0; i < n; i++) {
    const e = render[i]! - target[i]!;
    sum += e * e;
    dRender[i] += k * e;
  }
  return sum / n;
}

/** A loss over whole images with its own weight schedule (the perceptual loss and its L2 warm-up). */
export interface ImageLoss {
  readonly name: string;
  /** The weight at a forward/backward pass (0 during a warm-up). */
  weightAt(pass: number): number;
  /** The loss value; adds `weight`·∂loss/∂render into `dRender`. */
  lossAndGrad(render: Float32Array, target: Float32Array, views: number, size: number, dRender: Float32Array, weight: number): Promise<number>;
}
