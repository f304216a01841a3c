/**
 * FaceLift's `gaussians.ply` (spec pipeline.md §6.2, `GaussianModel.save_ply` with `enable_gs_viewer=True`):
 * binary little-endian, one `vertex` element, 62 properties — x y z · red green blue (uchar) · f_dc_0..2 ·
 * f_rest_0..44 (zero padding to SH degree 3, so standard 3DGS viewers accept the file) · opacity (logit) ·
 * scale_0..2 (log) · rot_0..3 (w first, unnormalised). src/splat has no PLY module yet, so the pipeline carries
 * this writer.
 */
import { writeFile } from 'node:fs/promises';
import { SH_C0, shCoeffs, type GaussianSet } from '../splat/gaussians.ts';

const REST = 45;
export const PLY_PROPERTIES: readonly string[] = [
  'x', 'y', 'z', 'red', 'green', 'blue', 'f_dc_0', 'f_dc_1', 'f_dc_2',
  ...Array.from({ length: REST }, (_, i) => `f_rest_${i}`),
  'opacity', 'scale_0', 'scale_1', 'scale_2', 'rot_0', 'rot_1', 'rot_2', 'rot_3',
];
/** Bytes per vertex: 59 float32 + 3 uchar. */
export const PLY_RECORD_BYTES = 4 * (PLY_PROPERTIES.length - 3) + 3;

export function plyHeader(count: number): string {
  const props = PLY_PROPERTIES.map((p) => `property ${p === 'red' || p === 'green' || p === 'blue' ? 'uchar' : 'float'} ${p}`);
  return ['ply', 'format binary_little_endian 1.0', `element vertex ${count}`, ...props, 'end_header', ''].join('\n');
}

/** The file's bytes. */
export function encodeFaceliftPly(g: GaussianSet): Uint8Array {
  const K = shCoeffs(g.shDegree);
  if (K > 16) throw new RangeError(`SH degree ${g.shDegree} does not fit the degree-3 PLY layout`);
  const header = Buffer.from(plyHeader(g.count), 'ascii');
  const out = new Uint8Array(header.length + g.count * PLY_RECORD_BYTES);
  out.set(header, 0);
  const view = new DataView(out.buffer);
  let o = header.length;
  const f = (v: number) => { view.setFloat32(o, v, true); o += 4; };
  for (let i = 0; i < g.count; i++) {
    for (let a = 0; a < 3; a++) f(g.means[3 * i + a]!);
    for (let c = 0; c < 3; c++) {
      const dc = g.sh[i * K * 3 + c]!;
      // uint8 of clip((C0·dc + 0.5)·255): numpy's astype truncates.
      out[o++] = Math.trunc(Math.min(255, Math.max(0, (SH_C0 * dc + 0.5) * 255)));
    }
    for (let c = 0; c < 3; c++) f(g.sh[i * K * 3 + c]!);
    // f_rest, channel-major as 3DGS (features_rest.transpose(1, 2)), each channel padded to 15 coefficients.
    for (let c = 0; c < 3; c++) for (let k = 1; k < 16; k++) f(k < K ? g.sh[(i * K + k) * 3 + c]! : 0);
    f(g.opacities[i]!);
    for (let a = 0; a < 3; a++) f(g.scales[3 * i + a]!);
    for (let a = 0; a < 4; a++) f(g.rotations[4 * i + a]!);
  }
  return out;
}

export async function writeFaceliftPly(path: string, g: GaussianSet): Promise<void> {
  await writeFile(path, encodeFaceliftPly(g));
}
