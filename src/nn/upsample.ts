/** `F.interpolate(x, scale_factor=2, mode='nearest')` on [N, C, H, W]. */
export { upsampleNearest2x as upsample2x } from '../core/index.ts';
