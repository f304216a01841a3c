/**
 * `FixViewDataset` (spec mvdiffusion.md §5) and the fork's `MouseMVDiffusionDataset` (mouse.md §6): a list file of
 * sample folders, each with the 6 fixed views `cam_000.png … cam_005.png` (front, front_right, right, back, left,
 * front_left; also found under `images/`), resized to `img_wh` with LANCZOS and composited onto one background per
 * sample. The input is the reference view (view 0 for FaceLift); the targets are all views starting from it, so
 * the model learns to reproduce its input in view slot 0. Mouse data may draw the reference view per item (targets
 * and prompts rotate with it) and apply one brightness/contrast change to all views alike.
 *
 * Draws are a pure function of (seed, pass, slot), so a resumed run reads exactly what an uninterrupted one would.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../util/errors.ts';
import { augmentViews } from '../augment.ts';
import { composite, drawBackground, readView } from '../gslrm/dataset.ts';
import { streamRng, type StreamRng } from '../rng.ts';
import type { DatasetConfig } from './config.ts';

export interface MvItem {
  dir: string;
  /** The conditioning view [3, S, S] in [0, 1]. */
  input: Float32Array;
  /** The targets [V, 3, S, S] in [0, 1]: view (ref + i) mod V in slot i. */
  targets: Float32Array;
  /** The view in each slot (its prompt embedding goes with it). */
  order: number[];
  background: [number, number, number];
}

export interface FixViewOptions {
  views: number;
  imageSize: number;
  dataset: DatasetConfig;
  /** Candidate reference views (one: fixed). */
  referenceViews: readonly number[];
  /** RGB views count as opaque (the fork's mouse data); FixViewDataset reads RGBA. */
  mouse: boolean;
}

export class FixViewDataset {
  /** Samples reported unreadable (each reported once). */
  readonly bad = new Map<string, string>();

  constructor(
    readonly samples: readonly string[],
    readonly opts: FixViewOptions,
    readonly seed: number,
    private readonly warn: (msg: string) => void = (m) => process.stderr.write(`${m}\n`),
  ) {}

  get length(): number {
    return this.samples.length;
  }

  /** Item `index` for the draw (pass, slot); an unreadable sample is reported and another drawn in its place. */
  async get(index: number, pass: number, slot: number): Promise<MvItem> {
    const rng = streamRng(this.seed, 'mv-item', pass, slot);
    let i = index;
    for (let attempt = 0; attempt < Math.max(8, this.samples.length * 2); attempt++) {
      const dir = this.samples[i]!;
      try {
        return await this.load(dir, rng);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        if (!this.bad.has(dir)) {
          this.bad.set(dir, e.message);
          this.warn(`skipping sample ${dir}: ${e.message}`);
        }
        if (this.bad.size >= this.samples.length)
          throw new UserError(
            `no readable sample in the dataset (${this.samples.length} listed; first problem: ${[...this.bad.values()][0]})`,
          );
        i = rng.int(this.samples.length);
      }
    }
    throw new UserError(
      `could not read a sample after many attempts (${this.bad.size} of ${this.samples.length} unreadable)`,
    );
  }

  private viewFile(dir: string, v: number): string {
    const name = `cam_${String(v).padStart(3, '0')}.png`;
    const direct = join(dir, name);
    if (existsSync(direct)) return direct;
    const nested = join(dir, 'images', name);
    if (existsSync(nested)) return nested;
    throw new UserError(`has no ${name} (looked in the folder and in images/)`);
  }

  private async load(dir: string, rng: StreamRng): Promise<MvItem> {
    const { views: V, imageSize: S, referenceViews, dataset } = this.opts;
    const files = [...Array(V).keys()].map((v) => this.viewFile(dir, v));
    const background = drawBackground(dataset.background, rng);
    const ref = referenceViews.length === 1 ? referenceViews[0]! : referenceViews[rng.int(referenceViews.length)]!;
    const order = [...Array(V).keys()].map((i) => (ref + i) % V);
    const n = S * S;
    const all = new Float32Array(V * 3 * n);
    const alpha = new Float32Array(n);
    await Promise.all(
      files.map(async (f, v) => {
        const img = await readView(f, S);
        if (img.channels === 4) {
          let sum = 0;
          for (let i = 3; i < img.data.length; i += 4) sum += img.data[i]!;
          if (sum === 0) throw new UserError(`${f} is fully transparent (its alpha channel is all zero)`);
        } else if (!this.opts.mouse) {
          throw new UserError(`${f} has no alpha channel (FixViewDataset composites RGBA views onto the background)`);
        }
        composite(img.data, img.channels, S, background, all.subarray(v * 3 * n, (v + 1) * 3 * n), alpha);
      }),
    );
    if (dataset.augmentation) augmentViews(all, dataset.augmentation, rng);
    const targets = new Float32Array(V * 3 * n);
    order.forEach((v, slot) => targets.set(all.subarray(v * 3 * n, (v + 1) * 3 * n), slot * 3 * n));
    return { dir, input: targets.slice(0, 3 * n), targets, order, background };
  }
}
