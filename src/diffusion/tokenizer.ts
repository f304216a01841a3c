/**
 * The CLIP BPE tokenizer (transformers' slow `CLIPTokenizer`, as SD-2.x ships it in `tokenizer/`): lower-cased,
 * whitespace-normalised text, split by CLIP's regex, each piece mapped through the byte→unicode table, merged
 * by `merges.txt` rank with "</w>" marking word ends, then [bos, …, eos] padded with the pad token (SD-2.x: "!")
 * and truncated to `model_max_length` (77).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';
import { JsonFields } from './json-fields.ts';

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** GPT-2's reversible byte → printable-unicode table. */
function byteEncoder(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) table[b] = String.fromCharCode(256 + n++);
  return table;
}

export class ClipTokenizer {
  private readonly bytes = byteEncoder();
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();

  constructor(
    private readonly vocab: Map<string, number>,
    merges: string[],
    readonly bos: number,
    readonly eos: number,
    readonly pad: number,
    readonly unk: number,
    readonly maxLength: number,
  ) {
    merges.forEach((m, i) => this.ranks.set(m, i));
  }

  /** Reads vocab.json, merges.txt and tokenizer_config.json of a `tokenizer/` folder. */
  static fromDir(dir: string): ClipTokenizer {
    const cfg = JsonFields.fromFile(join(dir, 'tokenizer_config.json'), 'tokenizer/tokenizer_config.json');
    let vocabObj: Record<string, number>;
    let mergesText: string;
    try {
      vocabObj = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
      mergesText = readFileSync(join(dir, 'merges.txt'), 'utf8');
    } catch (err) {
      throw new UserError(`${dir}: cannot read the CLIP tokenizer files vocab.json and merges.txt (${(err as Error).message})`, { cause: err });
    }
    const vocab = new Map(Object.entries(vocabObj));
    // The first line is a "#version" header; a CLIP vocabulary uses at most 49152 − 256 − 2 merges.
    const merges = mergesText.trim().split('\n').slice(1, 49152 - 256 - 2 + 1).map((l) => l.trim().split(/\s+/).join(' '));
    const id = (field: string, fallback: string) => {
      const raw = cfg.raw(field);
      const tok = typeof raw === 'string' ? raw : raw && typeof raw === 'object' && 'content' in raw ? String((raw as { content: unknown }).content) : fallback;
      const v = vocab.get(tok);
      if (v === undefined) throw new UserError(`${dir}: the ${field} "${tok}" is not in vocab.json`);
      return v;
    };
    return new ClipTokenizer(vocab, merges, id('bos_token', '<|startoftext|>'), id('eos_token', '<|endoftext|>'),
      id('pad_token', '<|endoftext|>'), id('unk_token', '<|endoftext|>'), cfg.int('model_max_length', 77));
  }

  private bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    let word = [...token];
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) break;
      const first = word[best]!;
      const second = word[best + 1]!;
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) { merged.push(first + second); i++; }
        else merged.push(word[i]!);
      }
      word = merged;
    }
    this.cache.set(token, word);
    return word;
  }

  /** Token ids without special tokens. */
  tokenize(text: string): number[] {
    const clean = text.trim().split(/\s+/).join(' ').toLowerCase();
    const ids: number[] = [];
    for (const piece of clean.match(PATTERN) ?? []) {
      const mapped = [...Buffer.from(piece, 'utf8')].map((b) => this.bytes[b]).join('');
      for (const t of this.bpe(mapped)) ids.push(this.vocab.get(t) ?? this.unk);
    }
    return ids;
  }

  /** [bos, tokens…, eos] truncated and padded to maxLength (`padding="max_length", truncation=True`). */
  encode(text: string): number[] {
    const body = this.tokenize(text).slice(0, this.maxLength - 2);
    const ids = [this.bos, ...body, this.eos];
    while (ids.length < this.maxLength) ids.push(this.pad);
    return ids;
  }
}
