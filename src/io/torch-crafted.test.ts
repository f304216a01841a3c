import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorchFile } from './torch-pt.ts';
import { openWeights } from './weights.ts';
import { PyDict } from './pickle.ts';
import { stateDictPickle } from './testing/pickle-bytes.ts';
import type { FakeTensor } from './testing/pickle-bytes.ts';
import { writeZip } from './testing/zip-writer.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'torchpt-'));
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// Storage 0: F32 0..11, shared by a [3,4] tensor, its transpose (a strided view) and an offset row.
const s0 = Float32Array.from({ length: 12 }, (_, i) => i);
const tensors: FakeTensor[] = [
  { name: 'w', storageType: 'FloatStorage', key: '0', storageNumel: 12, offset: 0, shape: [3, 4], stride: [4, 1] },
  { name: 'w_t', storageType: 'FloatStorage', key: '0', storageNumel: 12, offset: 0, shape: [4, 3], stride: [1, 4] },
  { name: 'row2', storageType: 'FloatStorage', key: '0', storageNumel: 12, offset: 8, shape: [4], stride: [1] },
  { name: 'ids', storageType: 'LongStorage', key: '1', storageNumel: 3, offset: 0, shape: [3], stride: [1] },
  { name: 'bf', storageType: 'BFloat16Storage', key: '2', storageNumel: 2, offset: 0, shape: [2], stride: [1] },
  { name: 'mask', storageType: 'BoolStorage', key: '3', storageNumel: 3, offset: 0, shape: [3], stride: [1] },
  { name: 'h', storageType: 'HalfStorage', key: '4', storageNumel: 2, offset: 0, shape: [1, 2], stride: [2, 1] },
  { name: 'scalar', storageType: 'FloatStorage', key: '5', storageNumel: 1, offset: 0, shape: [], stride: [] },
];
const payloads: Record<string, Uint8Array> = {
  '0': bytesOf(s0),
  '1': bytesOf(BigInt64Array.of(-1n, 2n ** 40n, 49407n)),
  '2': bytesOf(Uint16Array.of(0x3fc0, 0xc000)), // bf16 1.5, -2
  '3': Uint8Array.of(1, 0, 1),
  '4': bytesOf(Uint16Array.of(0x3c00, 0x7bff)), // f16 1, 65504
  '5': bytesOf(Float32Array.of(3.25)),
};

async function writePt(path: string, style: 'proto2' | 'proto4', prefix: string, opts: { zip64?: boolean; farOffset?: number } = {}) {
  const pkl = stateDictPickle(tensors, style, 2n ** 40n + 3n);
  const entries = [{ name: `${prefix}data.pkl`, data: pkl }];
  for (const [k, d] of Object.entries(payloads)) entries.push({ name: `${prefix}data/${k}`, data: d, ...(opts.farOffset && k === '0' ? { at: opts.farOffset } : {}) });
  entries.push({ name: `${prefix}version`, data: Buffer.from('3\n') });
  await writeZip(path, entries, { zip64: opts.zip64 ?? false });
}

async function checkAll(path: string) {
  const f = await TorchFile.open(path);
  try {
    assert.deepEqual(f.keys(), tensors.map((t) => `state_dict.${t.name}`));
    assert.equal((f.root as PyDict).get('step'), 2 ** 40 + 3); // LONG1 / BININT-sized ints decode to numbers
    assert.deepEqual([...(await f.read('state_dict.w') as Float32Array)], [...s0]);
    assert.deepEqual([...(await f.read('state_dict.w_t') as Float32Array)], [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    assert.deepEqual([...(await f.read('state_dict.row2') as Float32Array)], [8, 9, 10, 11]);
    assert.deepEqual(f.info('state_dict.ids'), { dtype: 'I64', shape: [3] });
    assert.deepEqual([...(await f.read('state_dict.ids') as BigInt64Array)], [-1n, 2n ** 40n, 49407n]);
    assert.deepEqual([...(await f.readF32('state_dict.bf'))], [1.5, -2]);
    assert.deepEqual(f.info('state_dict.mask'), { dtype: 'BOOL', shape: [3] });
    assert.deepEqual([...(await f.read('state_dict.mask'))], [1, 0, 1]);
    assert.deepEqual([...(await f.readF32('state_dict.h'))], [1, 65504]);
    assert.deepEqual(f.info('state_dict.scalar'), { dtype: 'F32', shape: [] });
    assert.deepEqual([...(await f.read('state_dict.scalar') as Float32Array)], [3.25]);
  } finally {
    await f.close();
  }
}

test('crafted torch.save files: protocol 2 and 4 pickles, archive/ prefix, I64/BF16/BOOL/F16, views and strides', async () => {
  const dir = tmp();
  try {
    await writePt(join(dir, 'a.pt'), 'proto2', 'archive/');
    await checkAll(join(dir, 'a.pt'));
    await writePt(join(dir, 'b.bin'), 'proto4', 'b/', { zip64: true });
    await checkAll(join(dir, 'b.bin'));
    const src = await openWeights(join(dir, 'b.bin'), { prefix: 'state_dict.' });
    assert.deepEqual(src.keys(), tensors.map((t) => t.name));
    await src.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zip64: a storage placed beyond 4 GiB (sparse file) reads correctly', async () => {
  const dir = tmp();
  try {
    const p = join(dir, 'big.pt');
    await writePt(p, 'proto4', 'big/', { farOffset: 4 * 2 ** 30 + 12345 });
    assert.ok(statSync(p).size > 2 ** 32);
    await checkAll(p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a truncated checkpoint gives a clear error instead of garbage', async () => {
  const dir = tmp();
  try {
    const p = join(dir, 'cut.pt');
    copyFileSync('/work/shared/golden/gslrm-tiny/ckpt_0000000000000042.pt', p);
    truncateSync(p, Math.floor(statSync(p).size / 2));
    await assert.rejects(openWeights(p), /zip end-of-central-directory record is missing \(the file is truncated; download it again\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tensor reaching past its storage, or a missing storage entry, is reported', async () => {
  const dir = tmp();
  try {
    const bad: FakeTensor[] = [{ name: 'x', storageType: 'FloatStorage', key: '0', storageNumel: 4, offset: 2, shape: [4], stride: [1] }];
    const p = join(dir, 'bad.pt');
    await writeZip(p, [{ name: 'bad/data.pkl', data: stateDictPickle(bad, 'proto2', 0) }, { name: 'bad/data/0', data: new Uint8Array(16) }]);
    const f = await TorchFile.open(p);
    await assert.rejects(f.read('state_dict.x'), /reaches element 6 of a 4-element storage/);
    await f.close();
    const q = join(dir, 'nodata.pt');
    await writeZip(q, [{ name: 'nodata/data.pkl', data: stateDictPickle(bad, 'proto2', 0) }]);
    const g = await TorchFile.open(q);
    await assert.rejects(g.read('state_dict.x'), /needs nodata\/data\/0, which the archive lacks/);
    await assert.rejects(g.read('state_dict.nope'), /no tensor named "state_dict\.nope"/);
    await g.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
