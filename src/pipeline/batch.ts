/**
 * A folder of portraits → one result folder per image (spec pipeline.md §1, §6): every .png/.jpg/.jpeg (any case)
 * in sorted order, result folder = the file name up to its first '.', as the reference. A file that fails is
 * reported and skipped; the others are still processed.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, fsReason } from '../util/errors.ts';
import type { ProgressListener } from './events.ts';
import { runInference, type InferenceResult, type InferenceSettings } from './run.ts';
import type { FaceliftModels } from './models.ts';

export const IMAGE_EXTENSION = /\.(png|jpe?g)$/i;

export interface BatchItem {
  file: string;
  /** Result folder name under the output folder. */
  name: string;
}

/**
 * The inputs of a folder, sorted by file name (code-point order, as Python's sorted()), with their result folder
 * names. Two files whose names agree up to the first '.' (a.png, a.v2.jpg) would share a folder in the reference;
 * here the later one gets its whole stem instead (a.v2), then a numeric suffix if that is taken too.
 */
export function listInputs(dir: string): BatchItem[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new UserError(`input ${dir} is not a folder; give a folder of .png/.jpg/.jpeg portraits`);
    names = readdirSync(dir);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read the input folder ${dir}: ${fsReason(e)}`);
  }
  const files = names.filter((n) => IMAGE_EXTENSION.test(n) && statSync(join(dir, n)).isFile()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const used = new Set<string>();
  return files.map((file) => {
    const stem = file.replace(IMAGE_EXTENSION, '');
    let name = file.slice(0, file.indexOf('.')) || stem;
    if (used.has(name)) name = stem;
    for (let k = 2; used.has(name); k++) name = `${stem}_${k}`;
    used.add(name);
    return { file: join(dir, file), name };
  });
}

export type BatchOutcome =
  | { ok: true; file: string; name: string; result: InferenceResult }
  | { ok: false; file: string; name: string; error: string };

export interface BatchOptions extends InferenceSettings {
  models: FaceliftModels;
  outputDir: string;
  /** Called when an image starts (index in the batch). */
  onImage?: (item: BatchItem, index: number, count: number) => void;
  /** Called when an image finished or failed. */
  onOutcome?: (o: BatchOutcome, index: number, count: number) => void;
}

/** One-line reason for a failed image (a UserError's message, else the error's first line). */
export function failureMessage(e: unknown): string {
  const msg = String((e as Error)?.message ?? e).split('\n')[0]!;
  return e instanceof UserError ? msg : `${(e as Error)?.name ?? 'Error'}: ${msg}`;
}

/**
 * The folder's inputs, refusing a missing or empty folder in plain words (before anything slow, such as loading or
 * downloading models, starts).
 */
export function checkInputFolder(inputDir: string): BatchItem[] {
  const items = listInputs(inputDir);
  if (items.length === 0) throw new UserError(`no .png/.jpg/.jpeg images in ${inputDir}`);
  return items;
}

/** Runs every input; never throws for a single image's failure (see the outcomes). */
export async function runFolder(inputDir: string, opts: BatchOptions, onProgress?: ProgressListener): Promise<BatchOutcome[]> {
  const items = checkInputFolder(inputDir);
  const outcomes: BatchOutcome[] = [];
  const { models, outputDir, onImage, onOutcome, ...settings } = opts;
  for (const [i, item] of items.entries()) {
    onImage?.(item, i, items.length);
    let o: BatchOutcome;
    try {
      const result = await runInference(item.file, { ...settings, models, outDir: join(outputDir, item.name) }, onProgress);
      o = { ok: true, file: item.file, name: item.name, result };
    } catch (e) {
      o = { ok: false, file: item.file, name: item.name, error: failureMessage(e) };
    }
    outcomes.push(o);
    onOutcome?.(o, i, items.length);
  }
  return outcomes;
}
