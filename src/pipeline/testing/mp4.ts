/**
 * Reads what the tests check in an MP4 without ffprobe: the first video track's sample (frame) count, timescale and
 * duration (→ fps), coded size, codec fourcc and H.264 profile. Walks the ISO-BMFF box tree
 * moov/trak/mdia/{mdhd, minf/stbl/{stsd, stsz}}.
 */
import { readFileSync } from 'node:fs';

export interface Mp4Info {
  brand: string;
  codec: string;
  width: number;
  height: number;
  frames: number;
  timescale: number;
  duration: number;
  fps: number;
  /** avcC profile_idc (100 = High) and chroma format is not stored there; the profile is enough for browsers. */
  avcProfile?: number;
}

interface Box { type: string; start: number; end: number }

function boxes(buf: Buffer, start: number, end: number): Box[] {
  const out: Box[] = [];
  for (let p = start; p + 8 <= end;) {
    let size = buf.readUInt32BE(p);
    const type = buf.toString('latin1', p + 4, p + 8);
    let header = 8;
    if (size === 1) { size = Number(buf.readBigUInt64BE(p + 8)); header = 16; }
    if (size === 0) size = end - p;
    if (size < header || p + size > end) throw new Error(`MP4: bad box ${type} at ${p}`);
    out.push({ type, start: p + header, end: p + size });
    p += size;
  }
  return out;
}

function child(buf: Buffer, b: Box, type: string, skip = 0): Box {
  const c = boxes(buf, b.start + skip, b.end).find((x) => x.type === type);
  if (!c) throw new Error(`MP4: no ${type} in ${b.type}`);
  return c;
}

export function readMp4(path: string): Mp4Info {
  const buf = readFileSync(path);
  const top = boxes(buf, 0, buf.length);
  const ftyp = top.find((b) => b.type === 'ftyp');
  const moov = top.find((b) => b.type === 'moov');
  if (!ftyp || !moov) throw new Error('MP4: missing ftyp or moov');
  for (const trak of boxes(buf, moov.start, moov.end).filter((b) => b.type === 'trak')) {
    const mdia = child(buf, trak, 'mdia');
    const hdlr = child(buf, mdia, 'hdlr');
    if (buf.toString('latin1', hdlr.start + 8, hdlr.start + 12) !== 'vide') continue;
    const mdhd = child(buf, mdia, 'mdhd');
    const v = buf[mdhd.start]!;
    const timescale = v === 1 ? buf.readUInt32BE(mdhd.start + 20) : buf.readUInt32BE(mdhd.start + 12);
    const duration = v === 1 ? Number(buf.readBigUInt64BE(mdhd.start + 24)) : buf.readUInt32BE(mdhd.start + 16);
    const stbl = child(buf, child(buf, mdia, 'minf'), 'stbl');
    const stsz = child(buf, stbl, 'stsz');
    const frames = buf.readUInt32BE(stsz.start + 8);
    const stsd = child(buf, stbl, 'stsd');
    const entry = boxes(buf, stsd.start + 8, stsd.end)[0]!;
    const width = buf.readUInt16BE(entry.start + 24);
    const height = buf.readUInt16BE(entry.start + 26);
    let avcProfile: number | undefined;
    if (entry.type === 'avc1') avcProfile = buf[child(buf, entry, 'avcC', 78).start + 1];
    return {
      brand: buf.toString('latin1', ftyp.start, ftyp.start + 4), codec: entry.type, width, height, frames, timescale, duration,
      fps: frames / (duration / timescale), ...(avcProfile !== undefined ? { avcProfile } : {}),
    };
  }
  throw new Error('MP4: no video track');
}
