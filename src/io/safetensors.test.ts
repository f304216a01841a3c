import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, closeSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors } from './safetensors.ts';
import { DTYPE_SIZE, float32ToHalfBits, f16BitsToNumber, numberToF16Bits, numberToBF16Bits, bf16BitsToNumber } from './dtypes.ts';
import { openWeights } from './weights.ts';
import type { DType } from './dtypes.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'st-'));

test('safetensors round trip: F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL, 0-d and empty tensors, metadata', async () => {
  const dir = tmp();
  try {
    const p = join(dir, 'rt.safetensors');
    const f32 = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 100);
    const t = {
      f64: { shape: [2], data: Float64Array.of(Math.PI, -1e300) },
      f32: { shape: [2, 3, 4], data: f32 },
      f16: { dtype: 'F16' as const, shape: [3], data: float32ToHalfBits([1, -0.5, 65504], 'F16') },
      bf16: { dtype: 'BF16' as const, shape: [3], data: float32ToHalfBits([1, -0.5, 3e38], 'BF16') },
      i64: { shape: [2], data: BigInt64Array.of(-(2n ** 62n), 49407n) },
      i32: { shape: [1], data: Int32Array.of(-7) },
      i16: { shape: [1], data: Int16Array.of(-300) },
      i8: { shape: [1], data: Int8Array.of(-8) },
      u8: { shape: [2, 2], data: Uint8Array.of(0, 1, 254, 255) },
      mask: { dtype: 'BOOL' as const, shape: [3], data: Uint8Array.of(1, 0, 1) },
      scalar: { shape: [], data: Float32Array.of(2.5) },
      empty: { shape: [0, 5], data: new Float32Array(0) },
    };
    await writeSafetensors(p, t, { format: 'pt', note: 'round trip' });
    assert.deepEqual(readdirSync(dir), ['rt.safetensors']); // no temp file left behind
    const buf = readFileSync(p);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0, 'data section starts 8-aligned');
    const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: number[]; dtype: string }>;
    for (const [k, e] of Object.entries(header)) {
      if (k !== '__metadata__') assert.equal(e.data_offsets[0]! % DTYPE_SIZE[e.dtype as DType], 0, `${k} aligned`);
    }
    const f = await SafetensorsFile.open(p);
    try {
      assert.deepEqual(f.metadata(), { format: 'pt', note: 'round trip' });
      assert.deepEqual(new Set(f.keys()), new Set(Object.keys(t)));
      for (const [name, v] of Object.entries(t)) {
        const info = f.info(name);
        assert.deepEqual(info.shape, v.shape, name);
        const got = await f.read(name);
        assert.equal(got.constructor, v.data.constructor, name);
        assert.deepEqual([...got], [...v.data], name);
      }
      assert.equal(f.info('f16').dtype, 'F16');
      assert.equal(f.info('bf16').dtype, 'BF16');
      assert.equal(f.info('mask').dtype, 'BOOL');
      assert.deepEqual([...(await f.readF32('f16'))], [1, -0.5, 65504]);
      const bf = await f.readF32('bf16');
      assert.deepEqual([...bf.subarray(0, 2)], [1, -0.5]);
      assert.ok(Math.abs(bf[2]! - 3e38) / 3e38 < 2 ** -8);
      assert.deepEqual([...(await f.readF32('i64'))], [-(2 ** 62), 49407]);
      assert.deepEqual([...(await f.readF32('f32'))], [...f32]);
    } finally {
      await f.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('half-precision conversions are exact and round to nearest even', () => {
  for (let h = 0; h < 65536; h++) {
    const x = f16BitsToNumber(h);
    if (!Number.isNaN(x)) assert.equal(numberToF16Bits(x), h);
    const b = bf16BitsToNumber(h);
    if (!Number.isNaN(b)) assert.equal(numberToBF16Bits(b), h);
  }
  assert.equal(numberToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(numberToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(numberToF16Bits(70000), 0x7c00); // overflow → inf
  assert.equal(numberToF16Bits(2 ** -25), 0); // below half the smallest subnormal
  assert.equal(numberToBF16Bits(1 + 2 ** -8), 0x3f80);
});

test('golden safetensors (gslrm-tiny inputs) read with the documented dtypes', async () => {
  const f = await openWeights('/work/shared/golden/gslrm-tiny/inputs.safetensors');
  try {
    assert.ok(f.keys().length > 0);
    for (const k of f.keys()) {
      const { dtype, shape } = f.info(k);
      const data = await f.read(k);
      assert.equal(data.length, shape.reduce((a, b) => a * b, 1));
      assert.ok(['F32', 'I64', 'I32', 'U8'].includes(dtype));
    }
    assert.ok(Object.keys(f.metadata()).includes('generator'));
  } finally {
    await f.close();
  }
});

function rawFile(path: string, header: unknown, dataBytes: number, extraHeaderLen = 0) {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length + extraHeaderLen));
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
}

test('corrupt safetensors files give clear errors', async () => {
  const dir = tmp();
  try {
    const p = join(dir, 'x.safetensors');
    writeFileSync(p, Buffer.alloc(5));
    await assert.rejects(SafetensorsFile.open(p), /fewer than the 8-byte header length/);
    rawFile(p, { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8, 1000);
    await assert.rejects(SafetensorsFile.open(p), /header claims \d+ bytes but the file has only \d+ .*truncated file/);
    rawFile(p, { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8);
    await assert.rejects(SafetensorsFile.open(p), /tensor "a" data_offsets \[0, 16\] run past the end of the data section \(8 bytes/);
    rawFile(p, { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8);
    await assert.rejects(SafetensorsFile.open(p), /tensor "a" \(F32 \[3\]\) needs 12 bytes but data_offsets \[0, 8\] give 8/);
    rawFile(p, { a: { dtype: 'Q4', shape: [3], data_offsets: [0, 8] } }, 8);
    await assert.rejects(SafetensorsFile.open(p), /unsupported dtype "Q4"/);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(4n);
    writeFileSync(p, Buffer.concat([len, Buffer.from('{"a"'), Buffer.alloc(8)]));
    await assert.rejects(SafetensorsFile.open(p), /header is not JSON/);
    len.writeBigUInt64LE(2n ** 60n);
    writeFileSync(p, Buffer.concat([len, Buffer.alloc(8)]));
    await assert.rejects(SafetensorsFile.open(p), /implausibly large/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('files over 4 GiB: a tensor stored past 4 GiB is read without loading the file (sparse file)', async () => {
  const dir = tmp();
  try {
    const p = join(dir, 'big.safetensors');
    const far = 4 * 2 ** 30 + 64;
    const header = Buffer.from(JSON.stringify({
      pad: { dtype: 'U8', shape: [far], data_offsets: [0, far] },
      tail: { dtype: 'F32', shape: [4], data_offsets: [far, far + 16] },
    }).padEnd(120));
    const fd = openSync(p, 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeSync(fd, len, 0, 8, 0);
    writeSync(fd, header, 0, header.length, 8);
    const tail = Buffer.from(Float32Array.of(1, 2, 3, 4).buffer);
    writeSync(fd, tail, 0, 16, 8 + header.length + far);
    closeSync(fd);
    assert.ok(statSync(p).size > 2 ** 32);
    const f = await SafetensorsFile.open(p);
    assert.deepEqual([...(await f.read('tail'))], [1, 2, 3, 4]);
    assert.deepEqual(f.byteRange('tail'), { offset: 8 + header.length + far, length: 16 });
    await f.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sharded safetensors: *.safetensors.index.json folders', async () => {
  const dir = tmp();
  try {
    await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), { a: { shape: [2], data: Float32Array.of(1, 2) } });
    await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), { b: { shape: [1], data: Float32Array.of(3) } });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 12 },
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    }));
    const s = await openWeights(dir);
    assert.deepEqual(s.keys(), ['a', 'b']);
    assert.deepEqual([...(await s.read('b'))], [3]);
    await s.close();
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', c: 'missing.safetensors' } }));
    await assert.rejects(openWeights(dir), /names shard missing\.safetensors, which is missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
