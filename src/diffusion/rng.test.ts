import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhiloxNormal, RecordedNoise, philox4x32 } from './rng.ts';

const hex = (w: number[]) => w.map((x) => x.toString(16).padStart(8, '0')).join(' ');

test('Philox4x32-10 reproduces the Random123 known-answer vectors', () => {
  assert.equal(hex(philox4x32([0, 0, 0, 0], [0, 0])), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
  assert.equal(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])), '408f276d 41c83b0e a20bc7c6 6d5451fd');
  assert.equal(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])), 'd16cfe09 94fdcceb 5001e420 24126ea1');
});

test('same seed → same draws; other seed → other draws; draws follow each other', () => {
  const a = new PhiloxNormal(4);
  const b = new PhiloxNormal(4);
  const a1 = a.normal([6, 16]);
  assert.deepEqual(a1, b.normal([6, 16]));
  assert.deepEqual(a.normal([5]), b.normal([5]));
  assert.equal(a.position, 24 + 2);
  assert.notDeepEqual(new PhiloxNormal(5).normal([6, 16]), a1);
  assert.notDeepEqual(a.normal([6, 16]), a1);
  assert.throws(() => new PhiloxNormal(-1), /seed/);
});

test('draws are standard normal (moments of 200k values)', () => {
  const x = new PhiloxNormal(123).normal([200_000]);
  let s = 0, s2 = 0, s4 = 0;
  for (const v of x) { s += v; s2 += v * v; s4 += v ** 4; }
  const n = x.length;
  const mean = s / n;
  const variance = s2 / n - mean * mean;
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.015, `var ${variance}`);
  assert.ok(Math.abs(s4 / n - 3) < 0.1, `4th moment ${s4 / n}`);
  assert.ok(x.every(Number.isFinite));
});

test('RecordedNoise replays in order and checks site, shape and exhaustion', () => {
  const r = new RecordedNoise([
    { site: 'image_embeds', shape: [2], data: Float32Array.from([1, 2]) },
    { site: 'latents', shape: [1, 2], data: Float32Array.from([3, 4]) },
  ]);
  assert.deepEqual(Array.from(r.normal([2], 'image_embeds')), [1, 2]);
  assert.throws(() => r.assertDrained(), /not used/);
  assert.throws(() => r.normal([2], 'step'), /recorded as latents/);
  assert.deepEqual(Array.from(r.normal([1, 2], 'latents')), [3, 4]);
  r.assertDrained();
  assert.throws(() => r.normal([1], 'step'), /only 2/);
});
