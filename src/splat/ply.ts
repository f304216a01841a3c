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
  let o = head.length;
  for (let i = 0; i < g.count; i++) {
    for (let k = 0; k < 3; k++) { buf.writeFloatLE(g.means[3 * i + k], o); o += 4; }
    if (layout === 'facelift') {
      for (let c = 0; c < 3; c++) buf[o++] = Math.trunc(Math.min(255, Math.max(0, (SH_C0 * g.sh[3 * K * i + c] + 0.5) * 255)));
    } else {
      o += 12; // normals stay 0
    }
    for (let c = 0; c < 3; c++) { buf.writeFloatLE(g.sh[3 * K * i + c], o); o += 4; }
    for (let c = 0; c < 3; c++) {
      for (let k = 1; k < restK; k++) { buf.writeFloatLE(k < K ? g.sh[3 * K * i + 3 * k + c] : 0, o); o += 4; }
    }
    buf.writeFloatLE(g.opacities[i], o); o += 4;
    for (let k = 0; k < 3; k++) { buf.writeFloatLE(g.scales[3 * i + k], o); o += 4; }
    for (let k = 0; k < 4; k++) { buf.writeFloatLE(g.rotations[4 * i + k], o); o += 4; }
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
  const values = new Float64Array(n * vertex.props.length);
  if (format === 'ascii') readAscii(buf, dataStart, elements, vi, values, source);
  else readBinary(buf, dataStart, elements, vi, values, format === 'binary_little_endian', source);
  const P = vertex.props.length;
  const c = (name: string) => col.get(name)!;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new UserError(`${source}: vertex ${Math.floor(i / P)} has a non-finite ${vertex.props[i % P].name}`);
  }
  let allZero = true;
  for (let i = 0; i < n && allZero; i++) for (let j = 0; j < nRest; j++) if (values[i * P + c(`f_rest_${j}`)] !== 0) { allZero = false; break; }
  const degree = allZero ? 0 : Math.sqrt(K) - 1;
  const Kd = shCoeffs(degree);
  const g = allocGaussians(n, degree);
  const rest = Array.from({ length: nRest }, (_, j) => c(`f_rest_${j}`));
  const cx = c('x'), cdc = c('f_dc_0'), cop = c('opacity'), cs = c('scale_0'), cr = c('rot_0');
  const cy = c('y'), cz = c('z'), cdc1 = c('f_dc_1'), cdc2 = c('f_dc_2'), cs1 = c('scale_1'), cs2 = c('scale_2');
  const cr1 = c('rot_1'), cr2 = c('rot_2'), cr3 = c('rot_3');
  for (let i = 0; i < n; i++) {
    const b = i * P;
    g.means[3 * i] = values[b + cx]; g.means[3 * i + 1] = values[b + cy]; g.means[3 * i + 2] = values[b + cz];
    g.sh[3 * Kd * i] = values[b + cdc]; g.sh[3 * Kd * i + 1] = values[b + cdc1]; g.sh[3 * Kd * i + 2] = values[b + cdc2];
    for (let ch = 0; ch < 3; ch++) for (let k = 1; k < Kd; k++) g.sh[3 * Kd * i + 3 * k + ch] = values[b + rest[ch * (K - 1) + k - 1]];
    g.opacities[i] = values[b + cop];
    g.scales[3 * i] = values[b + cs]; g.scales[3 * i + 1] = values[b + cs1]; g.scales[3 * i + 2] = values[b + cs2];
    g.rotations[4 * i] = values[b + cr]; g.rotations[4 * i + 1] = values[b + cr1]; g.rotations[4 * i + 2] = values[b + cr2]; g.rotations[4 * i + 3] = values[b + cr3];
  }
  return g;
}

function readBinary(buf: Buffer, start: number, elements: PlyElement[], vi: number, out: Float64Array, le: boolean, source: string): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = start;
  const read = (type: string): number => {
    if (o + TYPE_SIZE[type] > buf.length) throw new UserError(`${source}: file ends inside the data (truncated? ${buf.length} bytes)`);
    let v: number;
    switch (type) {
      case 'char': case 'int8': v = dv.getInt8(o); break;
      case 'uchar': case 'uint8': v = dv.getUint8(o); break;
      case 'short': case 'int16': v = dv.getInt16(o, le); break;
      case 'ushort': case 'uint16': v = dv.getUint16(o, le); break;
      case 'int': case 'int32': v = dv.getInt32(o, le); break;
      case 'uint': case 'uint32': v = dv.getUint32(o, le); break;
      case 'float': case 'float32': v = dv.getFloat32(o, le); break;
      default: v = dv.getFloat64(o, le);
    }
    o += TYPE_SIZE[type];
    return v;
  };
  for (let e = 0; e <= vi; e++) {
    const el = elements[e];
    if (e === vi) {
      const P = el.props.length;
      const need = el.count * el.props.reduce((a, p) => a + TYPE_SIZE[p.type], 0);
      if (o + need > buf.length) throw new UserError(`${source}: file is truncated: ${el.count} vertices need ${need} bytes of data, ${buf.length - o} present`);
      if (le && el.props.every((p) => p.type === 'float' || p.type === 'float32') && (buf.byteOffset + o) % 4 === 0) {
        const f = new Float32Array(buf.buffer, buf.byteOffset + o, el.count * P);
        out.set(f);
        return;
      }
      for (let i = 0; i < el.count; i++) for (let p = 0; p < P; p++) out[i * P + p] = read(el.props[p].type);
      return;
    }
    for (let i = 0; i < el.count; i++) {
      for (const p of el.props) {
        if (p.listCount !== undefined) { const m = read(p.listCount); for (let j = 0; j < m; j++) read(p.type); } else read(p.type);
      }
    }
  }
}

function readAscii(buf: Buffer, start: number, elements: PlyElement[], vi: number, out: Float64Array, source: string): void {
  const lines = buf.toString('latin1', start).split(/\r?\n/);
  let line = 0;
  for (let e = 0; e < vi; e++) line += elements[e].count;
  const el = elements[vi], P = el.props.length;
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
