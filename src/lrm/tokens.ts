/**
 * Token and Gaussian orderings of GS-LRM (spec gslrm.md §3): the patchify order of the image tokens and the
 * order of the pixel-aligned Gaussians, which follows the tokens (view, patch row, patch col, py, px) and is
 * therefore not raster order.
 */

/**
 * Patchify a [V, C, H, W] image stack into tokens [V·(H/p)·(W/p), p·p·C]: tokens view-major then row-major over
 * patches; inside a token, feature (py·p + px)·C + c.
 */
export function patchify(x: Float32Array, V: number, C: number, H: number, W: number, p: number): Float32Array {
  if (x.length !== V * C * H * W) throw new RangeError(`patchify: ${x.length} values, expected ${V}×${C}×${H}×${W}`);
  if (H % p || W % p) throw new RangeError(`patchify: image ${W}×${H} is not a multiple of the patch size ${p}`);
  const hp = H / p, wp = W / p, dim = p * p * C;
  const out = new Float32Array(V * hp * wp * dim);
  let o = 0;
  for (let v = 0; v < V; v++) {
    for (let ph = 0; ph < hp; ph++) {
      for (let pw = 0; pw < wp; pw++) {
        for (let py = 0; py < p; py++) {
          const y = ph * p + py;
          for (let px = 0; px < p; px++) {
            const xx = pw * p + px;
            for (let c = 0; c < C; c++) out[o++] = x[((v * C + c) * H + y) * W + xx];
          }
        }
      }
    }
  }
  return out;
}

/**
 * For each pixel-aligned Gaussian j (0-based, i.e. Gaussian index minus the global ones), the raster index
 * v·H·W + y·W + x of its pixel. The Gaussian of (v, y, x) is j = v·H·W + ((⌊y/p⌋·(W/p) + ⌊x/p⌋)·p + y mod p)·p + x mod p.
 */
export function pixelGaussianOrder(V: number, H: number, W: number, p: number): Uint32Array {
  const hp = H / p, wp = W / p;
  const out = new Uint32Array(V * H * W);
  let j = 0;
  for (let v = 0; v < V; v++) {
    for (let ph = 0; ph < hp; ph++) {
      for (let pw = 0; pw < wp; pw++) {
        for (let py = 0; py < p; py++) {
          for (let px = 0; px < p; px++) out[j++] = v * H * W + (ph * p + py) * W + pw * p + px;
        }
      }
    }
  }
  return out;
}
