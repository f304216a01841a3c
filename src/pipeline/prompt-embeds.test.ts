import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPromptEmbeds } from './prompt-embeds.ts';

test('prompt embeddings: an explicit file, else clr_embeds.pt where FaceLift keeps it, else the text encoder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-prompts-'));
  try {
    assert.deepEqual(findPromptEmbeds(dir), { origin: 'text_encoder' });
    const ref = join(dir, 'mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt');
    mkdirSync(join(ref, '..'), { recursive: true });
    writeFileSync(ref, '');
    writeFileSync(join(dir, 'clr_embeds.pt'), '');
    assert.deepEqual(findPromptEmbeds(dir), { path: ref, origin: 'file' });
    assert.deepEqual(findPromptEmbeds(dir, join(dir, 'clr_embeds.pt')), { path: join(dir, 'clr_embeds.pt'), origin: 'file' });
    assert.throws(() => findPromptEmbeds(dir, join(dir, 'nope.pt')), /nope\.pt does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
