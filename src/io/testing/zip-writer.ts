import { open } from 'node:fs/promises';
import { centralRecord, endRecords, localHeader } from '../zip-records.ts';

/**
 * A minimal STORED-only zip writer for tests (what torch.save produces), with optional zip64 records
 * and optional sparse gaps so that entries can sit beyond 4 GiB without using disk space. CRCs are written as 0
 * (our reader does not check them), so fixtures stay cheap.
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
    const record = { name: Buffer.from(e.name, 'utf8'), size: e.data.length, crc: 0, offset: pos, force64: opts.zip64 === true };
    await write(localHeader({ ...record, force64: false }));
    await write(e.data);
    central.push(centralRecord(record));
  }
  const cd = Buffer.concat(central);
  const cdOffset = pos;
  await write(cd);
  await write(endRecords(entries.length, cd.length, cdOffset, opts.zip64 === true));
  if (opts.truncateTo !== undefined) await fh.truncate(opts.truncateTo);
  await fh.close();
}
