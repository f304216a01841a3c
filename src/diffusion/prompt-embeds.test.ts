import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { writeSafetensors } from '../io/safetensors.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computePromptEmbeds, loadPromptEmbeds, VIEW_PROMPTS } from './prompt-embeds.ts';
import { GOLDEN, maxAbsDiff, readSafetensors, tensor } from './testing/golden.ts';
import { ClipTokenizer } from './tokenizer.ts';

const dir = join(GOLDEN, 'pipeline-tiny');
const cases = await readSafetensors(join(dir, 'cases.safetensors'));

test('CLIP BPE tokenizer reproduces the reference ids of the 6 view prompts', () => {
  const tok = ClipTokenizer.fromDir(join(dir, 'pipeckpts/tokenizer'));
  const ids = VIEW_PROMPTS.flatMap((p) => tok.encode(p));
  assert.deepEqual(ids, Array.from(tensor(cases, 'common.prompt_ids').data));
  assert.equal(tok.encode('x '.repeat(200)).length, 77);
  assert.equal(tok.encode('x '.repeat(200))[76], tok.eos);
});

test('clr_embeds.pt loads as [6, 77, 32] and is checked against the UNet', async () => {
  const e = await loadPromptEmbeds(join(dir, 'clr_embeds.pt'), { views: 6, width: 32 });
  assert.deepEqual([e.views, e.tokens, e.width], [6, 77, 32]);
  await assert.rejects(loadPromptEmbeds(join(dir, 'clr_embeds.pt'), { views: 6, width: 1024 }), /shape \[6, 77, 32\], the UNet needs \[6, tokens, 1024\]/);
});

test("the mouse fork's 768-wide prompt embeddings are refused with what to use instead", async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'facelift-768-'));
  try {
    const f = join(tmp, 'clr_embeds.safetensors');
    await writeSafetensors(f, { e: { shape: [6, 77, 768], data: new Float32Array(6 * 77 * 768) } });
    await assert.rejects(loadPromptEmbeds(f, { views: 6, width: 1024 }),
      /\[6, 77, 768\].*CLIP ViT-L\/14.*1024-wide.*leave prompt_embed_path out/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('prompt embeddings from text_encoder/ + tokenizer/: match the fp32 reference, the shipped fp16 file, and are cached', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'facelift-prompts-'));
  try {
    const a = await computePromptEmbeds(join(dir, 'pipeckpts'), { cacheDir, threads: 2 });
    assert.ok(maxAbsDiff(a.data, tensor(cases, 'common.text_hidden_fp32').data) <= 2e-5);
    const shipped = await loadPromptEmbeds(join(dir, 'clr_embeds.pt'), { views: 6, width: 32 });
    assert.ok(maxAbsDiff(a.data, shipped.data) <= 5e-3);
    const files = readdirSync(cacheDir);
    assert.equal(files.length, 1);
    // The second call must read the cache: plant a marked copy there and get it back.
    const marked = Float32Array.from(a.data, (x) => x + 1);
    await writeSafetensors(join(cacheDir, files[0]!), { prompt_embeds: { shape: [6, 77, 32], data: marked } });
    const b = await computePromptEmbeds(join(dir, 'pipeckpts'), { cacheDir });
    assert.deepEqual(b.data, marked);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
