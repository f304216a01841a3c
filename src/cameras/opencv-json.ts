/**
 * `opencv_cameras.json` (spec data-formats.md §2): `{"id": string, "frames": [{w, h, fx, fy, cx, cy, w2c 4×4
 * row-major, file_path?, …}]}`, OpenCV axes, world→camera matrices. Reading validates every field and says which
 * frame and field is wrong; unknown fields are kept so that a read → write round trip preserves them.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { UserError } from '../util/errors.ts';
import { invertRigid, type Camera } from './camera.ts';

export interface CameraFrame {
  camera: Camera;
  /** Image path relative to the sample folder, when the file has one. */
  filePath?: string;
  /** Every other field of the frame, as read (blender_camera_name, azimuth_deg, …). */
  extra: Record<string, unknown>;
}

export interface CameraFile {
  id: string;
  frames: CameraFrame[];
  /** Other top-level fields, as read. */
  extra: Record<string, unknown>;
}

const KNOWN = new Set(['w', 'h', 'fx', 'fy', 'cx', 'cy', 'w2c', 'file_path']);

/** Parses the JSON text of an opencv_cameras.json file; `source` names it in errors. */
export function parseCameraJson(text: string, source = 'opencv_cameras.json'): CameraFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw new UserError(`${source}: expected a JSON object with "frames", got ${typeof doc}`);
  if (!Array.isArray(doc.frames)) throw new UserError(`${source}: missing "frames" array`);
  if (doc.frames.length === 0) throw new UserError(`${source}: "frames" is empty`);
  const id = doc.id === undefined ? '' : String(doc.id);
  const frames = doc.frames.map((f: unknown, i: number) => parseFrame(f, `${source}: frame ${i}`));
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (k !== 'id' && k !== 'frames') extra[k] = v;
  return { id, frames, extra };
}

function parseFrame(f: unknown, where: string): CameraFrame {
  if (!isObject(f)) throw new UserError(`${where}: expected an object`);
  const num = (k: string, positive: boolean, integer: boolean): number => {
    const v = f[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`${where}: "${k}" must be a finite number, got ${JSON.stringify(v)}`);
    if (positive && !(v > 0)) throw new UserError(`${where}: "${k}" must be > 0, got ${v}`);
    if (integer && !Number.isInteger(v)) throw new UserError(`${where}: "${k}" must be an integer, got ${v}`);
    return v;
  };
  const width = num('w', true, true), height = num('h', true, true);
  const fx = num('fx', true, false), fy = num('fy', true, false), cx = num('cx', false, false), cy = num('cy', false, false);
  const m = f.w2c;
  if (!Array.isArray(m) || m.length !== 4 || !m.every((r) => Array.isArray(r) && r.length === 4)) {
    throw new UserError(`${where}: "w2c" must be a 4×4 nested list (row-major)`);
  }
  const w2c = new Float64Array(16);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      const v = (m[r] as unknown[])[c];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`${where}: w2c[${r}][${c}] must be a finite number, got ${JSON.stringify(v)}`);
      w2c[4 * r + c] = v;
    }
  }
  checkRigid(w2c, where);
  const filePath = f.file_path === undefined ? undefined : String(f.file_path);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) if (!KNOWN.has(k)) extra[k] = v;
  return { camera: { width, height, fx, fy, cx, cy, w2c, c2w: invertRigid(w2c) }, filePath, extra };
}

/** A rigid transform: last row (0,0,0,1), rotation orthonormal with determinant +1 (to 1e-4). */
function checkRigid(m: Float64Array, where: string): void {
  const tol = 1e-4;
  if (Math.abs(m[12]) > tol || Math.abs(m[13]) > tol || Math.abs(m[14]) > tol || Math.abs(m[15] - 1) > tol) {
    throw new UserError(`${where}: w2c's last row must be [0, 0, 0, 1], got [${[m[12], m[13], m[14], m[15]].join(', ')}]`);
  }
  for (let a = 0; a < 3; a++) {
    for (let b = 0; b < 3; b++) {
      const dot = m[4 * a] * m[4 * b] + m[4 * a + 1] * m[4 * b + 1] + m[4 * a + 2] * m[4 * b + 2];
      if (Math.abs(dot - (a === b ? 1 : 0)) > tol) throw new UserError(`${where}: w2c's rotation is not orthonormal (row ${a}·row ${b} = ${dot})`);
    }
  }
  const det = m[0] * (m[5] * m[10] - m[6] * m[9]) - m[1] * (m[4] * m[10] - m[6] * m[8]) + m[2] * (m[4] * m[9] - m[5] * m[8]);
  if (Math.abs(det - 1) > tol) throw new UserError(`${where}: w2c's rotation has determinant ${det}, expected +1 (a reflection or a non-OpenCV convention?)`);
}

export async function readCameraFile(path: string): Promise<CameraFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read camera file ${path}: ${(err as Error).message}`);
  }
  return parseCameraJson(text, path);
}

/** The JSON text for a set of cameras (extra fields written back as they were read). */
export function formatCameraJson(file: { id: string; frames: Array<Camera | CameraFrame>; extra?: Record<string, unknown> }): string {
  const frames = file.frames.map((f) => {
    const fr: CameraFrame = 'camera' in f ? f : { camera: f, extra: {} };
    const c = fr.camera;
    const w2c = [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((k) => c.w2c[4 * r + k]));
    return {
      w: c.width, h: c.height, fx: c.fx, fy: c.fy, cx: c.cx, cy: c.cy, w2c,
      ...(fr.filePath === undefined ? {} : { file_path: fr.filePath }),
      ...fr.extra,
    };
  });
  return JSON.stringify({ id: file.id, frames, ...(file.extra ?? {}) }, null, 2) + '\n';
}

export async function writeCameraFile(path: string, file: Parameters<typeof formatCameraJson>[0]): Promise<void> {
  await writeFile(path, formatCameraJson(file));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
