/**
 * Training configs as the reference reads them: a YAML tree, `--set key.path=value` overrides, and a schema of
 * the keys this port knows. Unknown keys are reported once (as warnings: the official files carry keys no code
 * reads); a known key with the wrong type is an error naming the key and the file.
 */
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { UserError } from '../util/errors.ts';

export type Tree = Record<string, unknown>;

/** A leaf type, or a nested schema. `?` suffix: may also be null. */
export type Leaf = 'number' | 'int' | 'bool' | 'string' | 'number?' | 'int?' | 'string?' | 'any';
export interface Schema {
  [key: string]: Leaf | Schema;
}

export function readYamlTree(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(
      `cannot read config ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  return parseYamlTree(text, path);
}

export function parseYamlTree(text: string, source: string): Tree {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UserError(`${source}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new UserError(`${source}: expected a YAML mapping at the top level`);
  return doc as Tree;
}

/**
 * Applies `key.path=value` overrides (the value is read as a YAML scalar: numbers, true/false, null, strings).
 * Intermediate mappings are created when missing.
 */
export function applyOverrides(tree: Tree, sets: readonly string[]): void {
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UserError(`--set ${s}: expected key.path=value (e.g. training.optimizer.lr=5e-5)`);
    const path = s.slice(0, eq).trim().split('.');
    let value: unknown;
    try {
      value = parse(s.slice(eq + 1));
    } catch {
      value = s.slice(eq + 1);
    }
    let node: Tree = tree;
    for (const k of path.slice(0, -1)) {
      const next = node[k];
      if (next === undefined || next === null) node[k] = {};
      else if (typeof next !== 'object' || Array.isArray(next))
        throw new UserError(`--set ${s}: ${k} is not a mapping in the config`);
      node = node[k] as Tree;
    }
    node[path[path.length - 1]!] = value;
  }
}

/**
 * Checks `tree` against `schema`: returns the dotted paths of unknown keys; throws a UserError for a known key
 * of the wrong type. Missing keys are not errors here (readers give defaults or say what is required).
 */
export function checkTree(tree: Tree, schema: Schema, source: string, prefix = ''): string[] {
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const s = schema[k];
    if (s === undefined) {
      unknown.push(path);
      continue;
    }
    if (typeof s === 'object') {
      if (v === null || v === undefined) continue;
      if (typeof v !== 'object' || Array.isArray(v))
        throw new UserError(`${source}: ${path} must be a mapping, got ${JSON.stringify(v)}`);
      unknown.push(...checkTree(v as Tree, s, source, path));
      continue;
    }
    if (!leafOk(s, v)) throw new UserError(`${source}: ${path} must be ${describeLeaf(s)}, got ${JSON.stringify(v)}`);
  }
  return unknown;
}

function leafOk(s: Leaf, v: unknown): boolean {
  if (s === 'any') return true;
  if (s.endsWith('?') && v === null) return true;
  const base = s.replace('?', '');
  if (base === 'number') return typeof v === 'number' && Number.isFinite(v);
  if (base === 'int') return typeof v === 'number' && Number.isInteger(v);
  if (base === 'bool') return typeof v === 'boolean';
  return typeof v === 'string';
}

function describeLeaf(s: Leaf): string {
  const base = s.replace('?', '');
  const word =
    base === 'int'
      ? 'an integer'
      : base === 'number'
        ? 'a number'
        : base === 'bool'
          ? 'true or false'
          : base === 'string'
            ? 'a string'
            : 'a value';
  return s.endsWith('?') ? `${word} or null` : word;
}

/** Reads a value at a dotted path (undefined when any part is missing). */
export function at(tree: Tree, path: string): unknown {
  let node: unknown = tree;
  for (const k of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Tree)[k];
  }
  return node;
}

export function dumpYaml(tree: Tree): string {
  return stringify(tree);
}
