/**
 * Gaussian PLY files. Two layouts are written:
 *  - 'facelift' (spec pipeline.md §6.2, FaceLift's `save_ply`): x y z · red green blue (uchar, trunc(clip((C0·dc +
 *    0.5)·255))) · f_dc_0..2 · f_rest_0..44 (SH padded to degree 3, zeros for FaceLift's degree 0) · opacity (logit)
 *    · scale_0..2 (log) · rot_0..3 (raw, w first): 62 properties, binary little-endian.
 *  - '3dgs' (graphdeco `save_ply`): x y z · nx ny nz (zeros) · f_dc_0..2 · f_rest_* (3·(K−1), channel-major) ·
 *    opacity · scale_0..2 · rot_0..3.
 * Reading accepts either (any property order, extra properties ignored), in binary little/big-endian or ASCII.
 * f_rest is channel-major in both: f_rest[c·(K−1) + (k−1)] is coefficient k of colour channel c.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { UserError } from '../util/errors.ts';
import { SH_C0, allocGaussians, shCoeffs, validateGaussians, type GaussianSet } from './gaussians.ts';

export type PlyLayout = 'facelift' | '3dgs';

const TYPE_SIZE: Record<string, number> = {
  char: 1, int8: 1, uchar: 1, uint8: 1, short: 2, int16: 2, ushort: 2, uint16: 2,
  int: 4, int32: 4, uint: 4, uint32: 4, float: 4, float32: 4, double: 8, float64: 8,
};

interface PlyProperty { name: string; type: string; listCount?: string }
interface PlyElement { name: string; count: number; props: PlyProperty[] }

/** Encodes `g` as a binary little-endian PLY in the given layout. */
export function encodePly(g: GaussianSet, layout: PlyLayout = 'facelift'): Buffer {
  validateGaussians(g);
  const K = shCoeffs(g.shDegree);
  const restK = layout === 'facelift' ? 16 : K; // FaceLift pads to degree 3
  const names: string[] = ['x', 'y', 'z'];
  if (layout === 'facelift') names.push('red', 'green', 'blue');
  else names.push('nx', 'ny', 'nz');
  names.push('f_dc_0', 'f_dc_1', 'f_dc_2');
  for (let j = 0; j < 3 * (restK - 1); j++) names.push(`f_rest_${j}`);
  names.push('opacity', 'scale_0', 'scale_1', 'scale_2', 'rot_0', 'rot_1', 'rot_2', 'rot_3');
  const isByte = (n: string) => n === 'red' || n === 'green' || n === 'blue';
  const header = ['ply', 'format binary_little_endian 1.0', `element vertex ${g.count}`,
    ...names.map((n) => `property ${isByte(n) ? 'uchar' : 'float'} ${n}`), 'end_header', ''].join('\n');
  const rec = names.reduce((a, n) => a + (isByte(n) ? 1 : 4), 0);
  const head = Buffer.from(header, 'ascii');
  const buf = Buffer.alloc(head.length + rec * g.count);
  head.copy(buf, 0);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = head.length;
  for (let i = 0; i < g.count; i++) {
    for (let k = 0; k < 3; k++) { dv.setFloat32(o, g.means[3 * i + k], true); o += 4; }
    if (layout === 'facelift') {
      for (let c = 0; c < 3; c++) buf[o++] = Math.trunc(Math.min(255, Math.max(0, (SH_C0 * g.sh[3 * K * i + c] + 0.5) * 255)));
    } else {
      o += 12; // normals stay 0
    }
    for (let c = 0; c < 3; c++) { dv.setFloat32(o, g.sh[3 * K * i + c], true); o += 4; }
    for (let c = 0; c < 3; c++) {
      for (let k = 1; k < restK; k++) { if (k < K) dv.setFloat32(o, g.sh[3 * K * i + 3 * k + c], true); o += 4; }
    }
    dv.setFloat32(o, g.opacities[i], true); o += 4;
    for (let k = 0; k < 3; k++) { dv.setFloat32(o, g.scales[3 * i + k], true); o += 4; }
    for (let k = 0; k < 4; k++) { dv.setFloat32(o, g.rotations[4 * i + k], true); o += 4; }
  }
  return buf;
}

function parseHeader(buf: Buffer, source: string): { format: string; elements: PlyElement[]; dataStart: number } {
  if (buf.length < 4 || buf.toString('ascii', 0, 4) !== 'ply\n' && buf.toString('ascii', 0, 5) !== 'ply\r\n') {
    throw new UserError(`${source}: not a PLY file (it must start with "ply")`);
  }
  const end = buf.indexOf('end_header');
  if (end < 0) throw new UserError(`${source}: PLY header has no "end_header" line`);
  let dataStart = end + 'end_header'.length;
  if (buf[dataStart] === 0x0d) dataStart++;
  if (buf[dataStart] !== 0x0a) throw new UserError(`${source}: "end_header" must end its line`);
  dataStart++;
  const lines = buf.toString('latin1', 0, end).split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  let format = '';
  const elements: PlyElement[] = [];
  for (const line of lines.slice(1)) {
    const w = line.split(/\s+/);
    if (w[0] === 'format') {
      format = w[1];
      if (!['ascii', 'binary_little_endian', 'binary_big_endian'].includes(format)) throw new UserError(`${source}: unknown PLY format "${format}"`);
    } else if (w[0] === 'element') {
      const count = Number(w[2]);
      if (w.length !== 3 || !Number.isInteger(count) || count < 0) throw new UserError(`${source}: bad element line "${line}"`);
      elements.push({ name: w[1], count, props: [] });
    } else if (w[0] === 'property') {
      const el = elements.at(-1);
      if (!el) throw new UserError(`${source}: property before any element: "${line}"`);
      if (w[1] === 'list') {
        if (w.length !== 5 || !(w[2] in TYPE_SIZE) || !(w[3] in TYPE_SIZE)) throw new UserError(`${source}: bad list property "${line}"`);
        el.props.push({ name: w[4], type: w[3], listCount: w[2] });
      } else {
        if (w.length !== 3 || !(w[1] in TYPE_SIZE)) throw new UserError(`${source}: bad property line "${line}" (types: ${Object.keys(TYPE_SIZE).join(', ')})`);
        el.props.push({ name: w[2], type: w[1] });
      }
    } else if (w[0] !== 'comment' && w[0] !== 'obj_info') {
      throw new UserError(`${source}: unexpected PLY header line "${line}"`);
    }
  }
  if (!format) throw new UserError(`${source}: PLY header has no "format" line`);
  return { format, elements, dataStart };
}

/**
 * Decodes a Gaussian PLY (either layout, binary or ASCII). SH degree comes from the number of f_rest properties;
 * if every f_rest value is 0 (FaceLift's padding) the set is returned as degree 0.
 */
export function decodePly(buf: Buffer, source = 'PLY'): GaussianSet {
  const { format, elements, dataStart } = parseHeader(buf, source);
  const vi = elements.findIndex((e) => e.name === 'vertex');
  if (vi < 0) throw new UserError(`${source}: no "vertex" element`);
  const vertex = elements[vi];
  const col = new Map(vertex.props.map((p, i) => [p.name, i]));
  const need = ['x', 'y', 'z', 'f_dc_0', 'f_dc_1', 'f_dc_2', 'opacity', 'scale_0', 'scale_1', 'scale_2', 'rot_0', 'rot_1', 'rot_2', 'rot_3'];
  const missing = need.filter((n) => !col.has(n));
  if (missing.length) throw new UserError(`${source}: not a Gaussian splat PLY: vertex lacks ${missing.join(', ')}`);
  if (vertex.props.some((p) => p.listCount !== undefined)) throw new UserError(`${source}: list properties in "vertex" are not supported`);
  let nRest = 0;
  while (col.has(`f_rest_${nRest}`)) nRest++;
  if (nRest % 3 !== 0 || ![0, 3, 8, 15].includes(nRest / 3)) {
    throw new UserError(`${source}: ${nRest} f_rest properties; expected 0, 9, 24 or 45 (SH degree 0–3)`);
  }
  const K = nRest / 3 + 1;
  const n = vertex.count;
  const get = format === 'ascii'
    ? asciiColumns(buf, dataStart, elements, vi, source)
    : binaryColumns(buf, dataStart, elements, vi, format === 'binary_little_endian', source);
  const c = (name: string) => col.get(name)!;
  const rest = Array.from({ length: nRest }, (_, j) => c(`f_rest_${j}`));
  // Row-major passes: the records are read in file order.
  let allZero = true;
  for (let i = 0; i < n && allZero; i++) for (let j = 0; j < nRest; j++) if (get(i, rest[j]) !== 0) { allZero = false; break; }
  const degree = allZero ? 0 : Math.sqrt(K) - 1;
  const Kd = shCoeffs(degree);
  const g = allocGaussians(n, degree);
  const fields: Array<{ p: number; dst: Float32Array; stride: number; off: number }> = [];
  const add = (name: string, dst: Float32Array, stride: number, off: number) => fields.push({ p: c(name), dst, stride, off });
  ['x', 'y', 'z'].forEach((name, k) => add(name, g.means, 3, k));
  ['scale_0', 'scale_1', 'scale_2'].forEach((name, k) => add(name, g.scales, 3, k));
  ['rot_0', 'rot_1', 'rot_2', 'rot_3'].forEach((name, k) => add(name, g.rotations, 4, k));
  add('opacity', g.opacities, 1, 0);
  ['f_dc_0', 'f_dc_1', 'f_dc_2'].forEach((name, ch) => add(name, g.sh, 3 * Kd, ch));
  if (degree > 0) {
    for (let ch = 0; ch < 3; ch++) for (let k = 1; k < Kd; k++) add(`f_rest_${ch * (K - 1) + k - 1}`, g.sh, 3 * Kd, 3 * k + ch);
  }
  for (let i = 0; i < n; i++) {
    for (const f of fields) {
      const x = get(i, f.p);
      if (!Number.isFinite(x)) throw new UserError(`${source}: vertex ${i} has a non-finite ${vertex.props[f.p].name}`);
      f.dst[f.stride * i + f.off] = x;
    }
  }
  return g;
}

/** Value of property p of vertex i, from the binary records (fixed offsets; elements before "vertex" are skipped). */
function binaryColumns(buf: Buffer, start: number, elements: PlyElement[], vi: number, le: boolean, source: string): (i: number, p: number) => number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = start;
  const need = (bytes: number) => {
    if (o + bytes > buf.length) throw new UserError(`${source}: file ends inside the data (truncated? ${buf.length} bytes)`);
  };
  for (let e = 0; e < vi; e++) {
    for (let i = 0; i < elements[e].count; i++) {
      for (const p of elements[e].props) {
        if (p.listCount !== undefined) {
          need(TYPE_SIZE[p.listCount]);
          const m = readScalar(dv, o, p.listCount, le);
          o += TYPE_SIZE[p.listCount] + m * TYPE_SIZE[p.type];
        } else o += TYPE_SIZE[p.type];
        need(0);
      }
    }
  }
  const el = elements[vi];
  const offs: number[] = [];
  let rec = 0;
  for (const p of el.props) { offs.push(rec); rec += TYPE_SIZE[p.type]; }
  if (o + rec * el.count > buf.length) {
    throw new UserError(`${source}: file is truncated: ${el.count} vertices need ${rec * el.count} bytes of data, ${buf.length - o} present`);
  }
  const base = o;
  const types = el.props.map((p) => p.type);
  const isF32 = types.map((t) => t === 'float' || t === 'float32');
  return (i: number, p: number): number => {
    const at = base + i * rec + offs[p];
    return isF32[p] ? dv.getFloat32(at, le) : readScalar(dv, at, types[p], le);
  };
}

function readScalar(dv: DataView, o: number, type: string, le: boolean): number {
  switch (type) {
    case 'char': case 'int8': return dv.getInt8(o);
    case 'uchar': case 'uint8': return dv.getUint8(o);
    case 'short': case 'int16': return dv.getInt16(o, le);
    case 'ushort': case 'uint16': return dv.getUint16(o, le);
    case 'int': case 'int32': return dv.getInt32(o, le);
    case 'uint': case 'uint32': return dv.getUint32(o, le);
    case 'float': case 'float32': return dv.getFloat32(o, le);
    default: return dv.getFloat64(o, le);
  }
}

/** Value of property p of vertex i, from ASCII vertex lines (parsed once into a value table). */
function asciiColumns(buf: Buffer, start: number, elements: PlyElement[], vi: number, source: string): (i: number, p: number) => number {
  const lines = buf.toString('latin1', start).split(/\r?\n/);
  let line = 0;
  for (let e = 0; e < vi; e++) line += elements[e].count;
  const el = elements[vi], P = el.props.length;
  const out = new Float64Array(el.count * P);
  for (let i = 0; i < el.count; i++) {
    const text = lines[line + i];
    if (text === undefined || text.trim() === '') throw new UserError(`${source}: file ends after ${i} of ${el.count} vertices`);
    const w = text.trim().split(/\s+/);
    if (w.length < P) throw new UserError(`${source}: vertex ${i} has ${w.length} values, expected ${P}`);
    for (let p = 0; p < P; p++) {
      const v = Number(w[p]);
      if (Number.isNaN(v) && w[p] !== 'nan') throw new UserError(`${source}: vertex ${i}: "${w[p]}" is not a number (${el.props[p].name})`);
      out[i * P + p] = v;
    }
  }
  return (i: number, p: number): number => out[i * P + p];
}

/** Encodes `g` as an ASCII PLY (same properties as the binary layout; for debugging and tests). */
export function encodePlyAscii(g: GaussianSet, layout: PlyLayout = 'facelift'): Buffer {
  const bin = encodePly(g, layout);
  const { elements, dataStart } = parseHeader(bin, 'encodePly');
  const props = elements[0].props;
  const header = bin.toString('latin1', 0, dataStart).replace('binary_little_endian', 'ascii');
  const rows: string[] = [];
  let o = dataStart;
  for (let i = 0; i < g.count; i++) {
    const row: string[] = [];
    for (const p of props) {
      if (p.type === 'uchar') { row.push(String(bin[o])); o += 1; } else { row.push(String(bin.readFloatLE(o))); o += 4; }
    }
    rows.push(row.join(' '));
  }
  return Buffer.from(header + rows.join('\n') + (rows.length ? '\n' : ''), 'latin1');
}

export async function readPly(path: string): Promise<GaussianSet> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new UserError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return decodePly(buf, path);
}

export async function writePly(path: string, g: GaussianSet, layout: PlyLayout = 'facelift'): Promise<void> {
  await writeFile(path, encodePly(g, layout));
}
