import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openWeights } from '../io/weights.ts';
import { ClipTokenizer } from './clip-tokenizer.ts';
import { computePromptEmbeds, promptIds, resolvePromptEmbeds } from './prompt-embeds.ts';
import { GOLDEN, TINY_CLR_EMBEDS, TINY_PIPECKPTS } from './testing/tiny-weights.ts';

async function golden(name: string): Promise<Float32Array> {
  const src = await openWeights(join(GOLDEN, 'pipeline-tiny/cases.safetensors'));
  try { return await src.readF32(name); } finally { await src.close(); }
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

test('CLIP tokenizer: the six FaceLift view prompts give exactly the reference ids (pipeline-tiny common.prompt_ids)', async () => {
  const tok = ClipTokenizer.fromDir(join(TINY_PIPECKPTS, 'tokenizer'));
  const ids = promptIds(tok, 6);
  assert.deepEqual(Array.from(ids, Number), Array.from(await golden('common.prompt_ids')));
  // bos … eos, then the pad token "!" (id 0) up to 77.
  const first = tok.encode('a rendering image of 3D models, front view, color map.');
  assert.equal(first.length, 77);
  assert.equal(first[0], 554);
  assert.equal(first.at(-1), 0);
  assert.ok(first.includes(555));
});

test('CLIP tokenizer: whitespace and case are normalised, long texts are truncated keeping eos', () => {
  const tok = ClipTokenizer.fromDir(join(TINY_PIPECKPTS, 'tokenizer'));
  assert.deepEqual(tok.encode('  A   Rendering\nIMAGE '), tok.encode('a rendering image'));
  const long = tok.encode('front view '.repeat(100));
  assert.equal(long.length, 77);
  assert.equal(long[76], 555);
  assert.throws(() => ClipTokenizer.fromDir('/nonexistent'), /tokenizer folder must hold vocab\.json/);
});

test('prompt embeddings computed from text_encoder/ match the fp32 reference (2e-5) and clr_embeds.pt (fp16, 5e-3); cached on the second call', async () => {
  const { data, shape } = await computePromptEmbeds(TINY_PIPECKPTS, 6, 2);
  assert.deepEqual(shape, [6, 77, 32]);
  assert.ok(maxDiff(data, await golden('common.text_hidden_fp32')) <= 2e-5);
  const clr = await openWeights(TINY_CLR_EMBEDS);
  const ref = await clr.readF32(clr.keys()[0]!);
  await clr.close();
  assert.ok(maxDiff(data, ref) <= 5e-3, `vs clr_embeds.pt: ${maxDiff(data, ref)}`);

  const cacheDir = mkdtempSync(join(tmpdir(), 'prompt-cache-'));
  try {
    const a = await resolvePromptEmbeds({ pipeckpts: TINY_PIPECKPTS, cacheDir, views: 6, threads: 2 });
    assert.equal(a.origin, 'computed');
    const b = await resolvePromptEmbeds({ pipeckpts: TINY_PIPECKPTS, cacheDir, views: 6 });
    assert.deepEqual(b, { path: a.path, origin: 'cache' });
    const cached = await openWeights(a.path);
    assert.deepEqual(cached.info(cached.keys()[0]!).shape, [6, 77, 32]);
    assert.ok(maxDiff(await cached.readF32(cached.keys()[0]!), data) === 0);
    await cached.close();
    // An explicit file wins; a missing one is a clear error.
    assert.deepEqual(await resolvePromptEmbeds({ pipeckpts: TINY_PIPECKPTS, cacheDir, views: 6, explicit: TINY_CLR_EMBEDS }), { path: TINY_CLR_EMBEDS, origin: 'file' });
    await assert.rejects(resolvePromptEmbeds({ pipeckpts: TINY_PIPECKPTS, cacheDir, views: 6, explicit: '/nope/clr_embeds.pt' }), /does not exist/);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
