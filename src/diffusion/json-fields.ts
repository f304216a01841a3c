/**
 * Strict readers for the fields of official config files (diffusers / transformers JSON).
 *
 * Every config reader in this folder goes through `JsonFields`, so that a wrong or missing value produces one
 * error that names the file, the field, what was found and what is expected.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export class JsonFields {
  /** `label` names the file in error messages (e.g. "unet/config.json"). */
  constructor(readonly label: string, private readonly obj: Record<string, Json>) {}

  static fromFile(path: string, label = path): JsonFields {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new UserError(`cannot read ${label} (${path}): ${(err as Error).message}`, { cause: err });
    }
    return JsonFields.fromText(text, label);
  }

  static fromText(text: string, label: string): JsonFields {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new UserError(`${label} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new UserError(`${label} must contain a JSON object`);
    }
    return new JsonFields(label, parsed as Record<string, Json>);
  }

  has(key: string): boolean {
    return key in this.obj && this.obj[key] !== undefined;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  fail(key: string, expected: string): never {
    const got = this.has(key) ? JSON.stringify(this.obj[key]) : 'nothing (field missing)';
    throw new UserError(`${this.label}: field "${key}" must be ${expected}, found ${got}`);
  }

  private get(key: string, fallback: Json | undefined, expected: string): Json {
    if (this.has(key)) return this.obj[key];
    if (fallback === undefined) this.fail(key, expected);
    return fallback;
  }

  num(key: string, fallback?: number): number {
    const v = this.get(key, fallback, 'a number');
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a number');
    return v;
  }

  /** A positive integer (sizes, counts). */
  int(key: string, fallback?: number, min = 1): number {
    const v = this.get(key, fallback, `an integer ≥ ${min}`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(key, `an integer ≥ ${min}`);
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.get(key, fallback, 'true or false');
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  str(key: string, fallback?: string): string {
    const v = this.get(key, fallback, 'a string');
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  /** A string from a fixed set; anything else is reported as unsupported. */
  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const expected = `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
    const v = this.get(key, fallback, expected);
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) this.fail(key, expected);
    return v as T;
  }

  /** The field must be absent, or exactly `expected` (a feature facelift-ts does not implement otherwise). */
  fixed(key: string, expected: Json): void {
    if (!this.has(key)) return;
    if (JSON.stringify(this.obj[key]) !== JSON.stringify(expected)) {
      this.fail(key, `${JSON.stringify(expected)} (the only value facelift-ts supports, as in the official model)`);
    }
  }

  numArray(key: string, length?: number, fallback?: number[]): number[] {
    const expected = length === undefined ? 'an array of numbers' : `an array of ${length} numbers`;
    const v = this.get(key, fallback, expected);
    if (!Array.isArray(v) || (length !== undefined && v.length !== length) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      this.fail(key, expected);
    }
    return v as number[];
  }

  intArray(key: string, length?: number): number[] {
    const expected = length === undefined ? 'an array of positive integers' : `an array of ${length} positive integers`;
    const v = this.get(key, undefined, expected);
    if (!Array.isArray(v) || v.length === 0 || (length !== undefined && v.length !== length) || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x > 0)) {
      this.fail(key, expected);
    }
    return v as number[];
  }

  strArray(key: string, length?: number): string[] {
    const expected = length === undefined ? 'an array of strings' : `an array of ${length} strings`;
    const v = this.get(key, undefined, expected);
    if (!Array.isArray(v) || (length !== undefined && v.length !== length) || !v.every((x) => typeof x === 'string')) this.fail(key, expected);
    return v as string[];
  }

  /** A nested object, as another reader. */
  object(key: string): JsonFields {
    const v = this.get(key, undefined, 'an object');
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'an object');
    return new JsonFields(`${this.label} › ${key}`, v as Record<string, Json>);
  }
}
