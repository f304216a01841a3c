/**
 * The CLIP BPE tokenizer (transformers' slow `CLIPTokenizer`), only as far as FaceLift's fixed view prompts need
 * it: the prompt embeddings `clr_embeds.pt` are not on the Hugging Face hub, so they are recomputed from
 * `pipeckpts/text_encoder` + `pipeckpts/tokenizer` (spec mvdiffusion.md §4.1, FaceLift's
 * `generate_fixed_text_embeds.py`: `padding="max_length", max_length=77, truncation=True`).
 *
 * This lives in src/pipeline because the diffusion module has no tokenizer yet; it reads the standard files
 * (`vocab.json`, `merges.txt`, `special_tokens_map.json`, `tokenizer_config.json`).
 *
 * Steps, as CLIPTokenizer: clean whitespace and lower-case (what ftfy + whitespace_clean do to plain ASCII text);
 * split with CLIP's pattern; each piece → bytes → the GPT-2 byte-to-unicode alphabet → BPE with `</w>` marking the
 * end of a word; ids = [bos] + pieces + [eos], truncated to max length (eos kept), padded with the pad token.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2's reversible byte → printable-unicode map (bytes that are printable keep their code point). */
function byteEncoder(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const map: string[] = new Array(256);
  for (const b of bs) map[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCodePoint(256 + n++);
  return map;
}

export interface ClipTokenizerFiles {
  vocab: Record<string, number>;
  /** Merge rules in rank order, each "a b". */
  merges: string[];
  bos: string;
  eos: string;
  pad: string;
  maxLength: number;
}

export class ClipTokenizer {
  private readonly ranks = new Map<string, number>();
  private readonly bytes = byteEncoder();
  private readonly cache = new Map<string, string[]>();

  constructor(private readonly files: ClipTokenizerFiles) {
    files.merges.forEach((m, i) => this.ranks.set(m, i));
    for (const t of [files.bos, files.eos, files.pad]) {
      if (files.vocab[t] === undefined) throw new UserError(`CLIP tokenizer: special token ${JSON.stringify(t)} is not in the vocabulary`);
    }
  }

  /** Reads a diffusers `tokenizer/` folder. */
  static fromDir(dir: string): ClipTokenizer {
    const read = (f: string): string => {
      try {
        return readFileSync(join(dir, f), 'utf8');
      } catch {
        throw new UserError(`cannot read ${join(dir, f)}: the tokenizer folder must hold vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json`);
      }
    };
    const json = (f: string) => {
      try {
        return JSON.parse(read(f)) as Record<string, unknown>;
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(`${join(dir, f)} is not valid JSON`);
      }
    };
    const special = json('special_tokens_map.json');
    const config = json('tokenizer_config.json');
    const content = (v: unknown, what: string): string => {
      if (typeof v === 'string') return v;
      if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
      throw new UserError(`${join(dir, 'special_tokens_map.json')}: no ${what}`);
    };
    // CLIPTokenizer: `merges.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]` (the first line is a version header).
    const merges = read('merges.txt').trim().split('\n').slice(1, 49152 - 256 - 2 + 1);
    const maxLength = typeof config.model_max_length === 'number' && config.model_max_length < 1e6 ? config.model_max_length : 77;
    return new ClipTokenizer({
      vocab: json('vocab.json') as Record<string, number>,
      merges,
      bos: content(special.bos_token ?? config.bos_token, 'bos_token'),
      eos: content(special.eos_token ?? config.eos_token, 'eos_token'),
      pad: content(special.pad_token ?? config.pad_token, 'pad_token'),
      maxLength,
    });
  }

  get maxLength(): number {
    return this.files.maxLength;
  }

  private bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    const chars = [...token];
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) break;
      const [a, b] = [word[best]!, word[best + 1]!];
      const next: string[] = [];
      for (let i = 0; i < word.length;) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) { next.push(a + b); i += 2; } else next.push(word[i++]!);
      }
      word = next;
    }
    this.cache.set(token, word);
    return word;
  }

  /** BPE pieces of a text (no special tokens added). */
  tokenize(text: string): string[] {
    const clean = text.replace(/\s+/g, ' ').trim().toLowerCase();
    const out: string[] = [];
    for (const m of clean.matchAll(PATTERN)) {
      const piece = [...Buffer.from(m[0], 'utf8')].map((b) => this.bytes[b]!).join('');
      out.push(...this.bpe(piece));
    }
    return out;
  }

  /** Token ids, `[bos] + pieces + [eos]`, truncated and padded to `maxLength` (padding="max_length", truncation=True). */
  encode(text: string): number[] {
    const v = this.files.vocab;
    const unk = v[this.files.eos]!;
    const body = this.tokenize(text).map((t) => v[t] ?? unk).slice(0, this.maxLength - 2);
    const ids = [v[this.files.bos]!, ...body, v[this.files.eos]!];
    while (ids.length < this.maxLength) ids.push(v[this.files.pad]!);
    return ids;
  }
}
