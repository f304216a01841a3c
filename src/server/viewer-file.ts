/**
 * The file the browser's splat viewer loads. FaceLift's gaussians.ply carries `red green blue` (uchar) beside the
 * SH coefficients, and Spark 2.2 takes any PLY with x/y/z/red/green/blue for a plain point cloud (fixed tiny
 * scale, no opacity): the head would show as sparse dots. So the viewer gets the same Gaussians in the standard
 * 3DGS layout (normals instead of bytes colours), written once per job next to the results.
 */
import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { readPly, writePly } from '../splat/ply.ts';

export const VIEWER_FILE = 'viewer.ply';

const inFlight = new Map<string, Promise<string>>();

/** Path of the viewer's PLY in `resultDir`, converting gaussians.ply on first use. */
export function ensureViewerPly(resultDir: string): Promise<string> {
  const out = join(resultDir, VIEWER_FILE);
  if (existsSync(out)) return Promise.resolve(out);
  let p = inFlight.get(out);
  if (!p) {
    p = (async () => {
      const g = await readPly(join(resultDir, 'gaussians.ply'));
      const tmp = `${out}.partial`;
      await writePly(tmp, g, '3dgs');
      await rename(tmp, out);
      return out;
    })().finally(() => inFlight.delete(out));
    inFlight.set(out, p);
  }
  return p;
}
