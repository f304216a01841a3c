/**
 * The fixed records of a STORED zip file (APPNOTE 6.3), as pure functions: local file header, central directory
 * record (with a zip64 extra field when a size or offset needs one) and the end records (zip64 end record and
 * locator when needed, then the classic end record). Used by the torch.save writer and by test fixtures.
 */

export interface ZipEntryRecord {
  name: Buffer;
  size: number;
  crc: number;
  /** Byte offset of the entry's local header. */
  offset: number;
  /** Extra field of the local header (e.g. torch's alignment padding). */
  localExtra?: Buffer;
  /** Write zip64 fields even when the numbers would fit. */
  force64?: boolean;
}

const needs64 = (e: ZipEntryRecord): boolean => e.force64 === true || e.size >= 0xffffffff || e.offset >= 0xffffffff;

export function localHeader(e: ZipEntryRecord): Buffer {
  const big = needs64(e);
  const extra = e.localExtra ?? Buffer.alloc(0);
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(big ? 45 : 20, 4);
  h.writeUInt32LE(e.crc, 14);
  h.writeUInt32LE(big ? 0xffffffff : e.size, 18);
  h.writeUInt32LE(big ? 0xffffffff : e.size, 22);
  h.writeUInt16LE(e.name.length, 26);
  h.writeUInt16LE(extra.length, 28);
  return Buffer.concat([h, e.name, extra]);
}

export function centralRecord(e: ZipEntryRecord): Buffer {
  const big = needs64(e);
  const z64 = Buffer.alloc(big ? 28 : 0);
  if (big) {
    z64.writeUInt16LE(1, 0);
    z64.writeUInt16LE(24, 2);
    z64.writeBigUInt64LE(BigInt(e.size), 4);
    z64.writeBigUInt64LE(BigInt(e.size), 12);
    z64.writeBigUInt64LE(BigInt(e.offset), 20);
  }
  const c = Buffer.alloc(46);
  c.writeUInt32LE(0x02014b50, 0);
  c.writeUInt16LE(45, 4);
  c.writeUInt16LE(big ? 45 : 20, 6);
  c.writeUInt32LE(e.crc, 16);
  c.writeUInt32LE(big ? 0xffffffff : e.size, 20);
  c.writeUInt32LE(big ? 0xffffffff : e.size, 24);
  c.writeUInt16LE(e.name.length, 28);
  c.writeUInt16LE(z64.length, 30);
  c.writeUInt32LE(big ? 0xffffffff : e.offset, 42);
  return Buffer.concat([c, e.name, z64]);
}

/** The records after a central directory of `count` entries, `cdLength` bytes at `cdOffset`. */
export function endRecords(count: number, cdLength: number, cdOffset: number, force64 = false): Buffer {
  const need64 = force64 || cdOffset >= 0xffffffff || count >= 0xffff;
  const parts: Buffer[] = [];
  if (need64) {
    const r = Buffer.alloc(56);
    r.writeUInt32LE(0x06064b50, 0);
    r.writeBigUInt64LE(44n, 4);
    r.writeUInt16LE(45, 12);
    r.writeUInt16LE(45, 14);
    r.writeBigUInt64LE(BigInt(count), 24);
    r.writeBigUInt64LE(BigInt(count), 32);
    r.writeBigUInt64LE(BigInt(cdLength), 40);
    r.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cdLength), 8);
    loc.writeUInt32LE(1, 16);
    parts.push(r, loc);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(need64 ? 0xffff : count, 8);
  end.writeUInt16LE(need64 ? 0xffff : count, 10);
  end.writeUInt32LE(need64 ? 0xffffffff : cdLength, 12);
  end.writeUInt32LE(need64 ? 0xffffffff : cdOffset, 16);
  parts.push(end);
  return Buffer.concat(parts);
}
