import { open } from 'node:fs/promises';

/**
 * A minimal STORED-only zip writer for tests (what torch.save produces), with optional zip64 records
 * and optional sparse gaps so that entries can sit beyond 4 GiB without using disk space.
 */
export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** Start this entry's local header at least this far into the file (leaves a sparse hole). */
  at?: number;
}

export async function writeZip(path: string, entries: ZipInput[], opts: { zip64?: boolean; truncateTo?: number } = {}): Promise<void> {
  const fh = await open(path, 'w');
  let pos = 0;
  const central: Buffer[] = [];
  const write = async (b: Uint8Array) => { await fh.write(b, 0, b.length, pos); pos += b.length; };
  for (const e of entries) {
    if (e.at !== undefined && e.at > pos) pos = e.at;
    const name = Buffer.from(e.name, 'utf8');
    const offset = pos;
    const big = opts.zip64 || offset >= 0xffffffff || e.data.length >= 0xffffffff;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(big ? 45 : 20, 4);
    local.writeUInt32LE(0, 14); // crc: not checked by readers of torch files
    local.writeUInt32LE(Math.min(e.data.length, 0xffffffff), 18);
    local.writeUInt32LE(Math.min(e.data.length, 0xffffffff), 22);
    local.writeUInt16LE(name.length, 26);
    await write(Buffer.concat([local, name]));
    await write(e.data);
    const extra = big ? Buffer.alloc(4 + 24) : Buffer.alloc(0);
    if (big) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(e.data.length), 4);
      extra.writeBigUInt64LE(BigInt(e.data.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(big ? 45 : 20, 6);
    c.writeUInt32LE(big ? 0xffffffff : e.data.length, 20);
    c.writeUInt32LE(big ? 0xffffffff : e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(extra.length, 30);
    c.writeUInt32LE(big ? 0xffffffff : offset, 42);
    central.push(Buffer.concat([c, name, extra]));
  }
  const cd = Buffer.concat(central);
  const cdOffset = pos;
  await write(cd);
  const need64 = opts.zip64 || cdOffset >= 0xffffffff;
  if (need64) {
    const eocd64At = pos;
    const r = Buffer.alloc(56);
    r.writeUInt32LE(0x06064b50, 0);
    r.writeBigUInt64LE(44n, 4);
    r.writeUInt16LE(45, 12);
    r.writeUInt16LE(45, 14);
    r.writeBigUInt64LE(BigInt(entries.length), 24);
    r.writeBigUInt64LE(BigInt(entries.length), 32);
    r.writeBigUInt64LE(BigInt(cd.length), 40);
    r.writeBigUInt64LE(BigInt(cdOffset), 48);
    await write(r);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(eocd64At), 8);
    loc.writeUInt32LE(1, 16);
    await write(loc);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(need64 ? 0xffff : entries.length, 8);
  end.writeUInt16LE(need64 ? 0xffff : entries.length, 10);
  end.writeUInt32LE(need64 ? 0xffffffff : cd.length, 12);
  end.writeUInt32LE(need64 ? 0xffffffff : cdOffset, 16);
  await write(end);
  if (opts.truncateTo !== undefined) await fh.truncate(opts.truncateTo);
  await fh.close();
}
