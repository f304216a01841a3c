/**
 * `npm run bench -- detect [--threads 2] [--reps 3]`
 *
 * Face detection time per photo on the reference's detector portraits (../shared/golden/detect/img: FaceLift's
 * examples at 512², real photos up to 2048²): MTCNN (the default detector) against face-api's SSD side by side, each
 * after one warm-up run on the same photo; median of --reps. MTCNN's first run in a new detector (what a one-photo
 * `facelift infer` pays: its pyramid's sessions are made, its buffers first touched) is in the note.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { numberArg } from './args.ts';
import type { BenchRun } from './figure.ts';

export const run: BenchRun = async function* (args) {
  const threads = numberArg(args, 'threads', 2),
    reps = numberArg(args, 'reps', 3);
  const { compositeOnWhite } = await import('../src/preprocess/composite.ts');
  const { alphaOf, loadImage, rgbOf } = await import('../src/preprocess/image.ts');
  const { MtcnnDetector } = await import('../src/preprocess/mtcnn.ts');
  const { SsdFaceDetector } = await import('../src/preprocess/detect.ts');
  const dir = new URL('../../shared/golden/detect/img/', import.meta.url).pathname;
  const ssd = await SsdFaceDetector.load();
  const time = async (f: () => Promise<unknown>) => {
    await f();
    const t: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await f();
      t.push(performance.now() - t0);
    }
    return t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
  };
  for (const name of readdirSync(dir).sort()) {
    const l = await loadImage(join(dir, name));
    const white = compositeOnWhite(rgbOf(l.rgba), alphaOf(l.rgba));
    const mtcnn = await MtcnnDetector.load(undefined, { threads });
    const t0 = performance.now();
    await mtcnn.detect(white);
    const cold = performance.now() - t0;
    const m = await time(() => mtcnn.detect(white));
    await mtcnn.release();
    const s = await time(() => ssd.detect(white));
    yield {
      name: `MTCNN ${name} (${white.width}×${white.height})`,
      value: m,
      unit: 'ms',
      baseline: s,
      baselineName: 'face-api SSD (inputs ≤ 1024 px)',
      note: `${threads} threads; first run in a new detector ${cold.toFixed(0)} ms`,
    };
  }
};
