/**
 * A multi-camera rig's calibration (`new_cam.pkl`, the "MAMMAL" format of markerless_mouse_1_nerf): per camera the
 * pixel intrinsics K of the original frame and the world→camera rotation R and translation T (x_c = R·x_w + T).
 * Read through the restricted unpickler with numpy's array globals allowed and nothing else; a list of cameras or a
 * dict keyed by camera index; every matrix checked (shapes, finite, R a proper rotation).
 */
import { readFile } from 'node:fs/promises';
import { NdArray, numpyGlobals } from '../io/numpy-pickle.ts';
import { PyDict, unpickle } from '../io/pickle.ts';
import { UserError, fsReason } from '../util/errors.ts';
import { det3, type Mat3, type Vec3 } from './geometry.ts';

export interface RigCamera {
  /** Row-major 3×3 pixel intrinsics of the original frame. */
  K: Mat3;
  /** Row-major world→camera rotation. */
  R: Mat3;
  T: Vec3;
}

function numbers(x: unknown, n: number, what: string): number[] {
  const values = x instanceof NdArray ? [...x.data] : Array.isArray(x) ? x.flat(2) : null;
  if (!values || values.length !== n || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new UserError(`${what}: expected ${n} finite numbers`);
  }
  return values as number[];
}

function field(d: unknown, key: string, where: string): unknown {
  if (!(d instanceof PyDict)) throw new UserError(`${where} is not a dict with K, R and T`);
  if (!d.has(key)) throw new UserError(`${where} has no "${key}"`);
  return d.get(key);
}

/** The cameras of a parsed calibration, in camera order. */
export function rigFromPickle(obj: unknown, source = 'new_cam.pkl'): RigCamera[] {
  let entries: unknown[];
  if (Array.isArray(obj)) entries = obj;
  else if (obj instanceof PyDict) {
    const keys = [...obj.keys()].map((k) => [Number(k), k] as const);
    if (keys.some(([n]) => !Number.isInteger(n))) throw new UserError(`${source}: a dict of cameras must be keyed by camera index`);
    entries = keys.sort((a, b) => a[0] - b[0]).map(([, k]) => obj.get(k));
  } else throw new UserError(`${source}: expected a list of cameras (dicts with K, R, T) or a dict keyed by camera index`);
  if (entries.length === 0) throw new UserError(`${source}: no cameras`);
  return entries.map((e, i) => {
    const where = `${source}: camera ${i}`;
    const K = numbers(field(e, 'K', where), 9, `${where} K`) as Mat3;
    const R = numbers(field(e, 'R', where), 9, `${where} R`) as Mat3;
    const T = numbers(field(e, 'T', where), 3, `${where} T`) as Vec3;
    const d = det3(R);
    if (Math.abs(d - 1) > 1e-3) throw new UserError(`${where}: R is not a proper rotation (det ${d.toFixed(4)}; expected +1)`);
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 3; b++) {
        const dot = R[3 * a]! * R[3 * b]! + R[3 * a + 1]! * R[3 * b + 1]! + R[3 * a + 2]! * R[3 * b + 2]!;
        if (Math.abs(dot - (a === b ? 1 : 0)) > 1e-3) throw new UserError(`${where}: R is not orthonormal`);
      }
    }
    if (K[0]! <= 0 || K[4]! <= 0) throw new UserError(`${where}: K has non-positive focal lengths`);
    return { K, R, T };
  });
}

export async function readRig(path: string): Promise<RigCamera[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new UserError(`cannot read the calibration ${path}: ${fsReason(e)}`);
  }
  return rigFromPickle(unpickle(bytes, { globals: numpyGlobals(), source: path }), path);
}
