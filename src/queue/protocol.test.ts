import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeJob } from './protocol.ts';

const job = (settings: Record<string, unknown>) => ({
  id: 'a'.repeat(22), token: 'b'.repeat(22), exchange: 'http://127.0.0.1:9', format: 'png',
  settings: { autoCrop: true, guidanceScale: 3, steps: 20, seed: 4, ...settings },
  post: { profile: 'infer', frames: 3 },
});

test('job records carry the sampler when one is chosen; anything else in its place is refused', () => {
  assert.equal(decodeJob(job({})).settings.scheduler, undefined);
  assert.equal(decodeJob(job({ scheduler: 'unipc' })).settings.scheduler, 'unipc');
  assert.throws(() => decodeJob(job({ scheduler: 'euler' })), /malformed job record: settings/);
  assert.throws(() => decodeJob(job({ scheduler: 3 })), /malformed job record: settings/);
});
