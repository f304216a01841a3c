/**
 * `npm run bench -- matting [--count 50] [--seed 7] [--resolution 512] [--modnet FILE] [--u2net FILE] [--threads 2]`
 *
 * Background removal against ground truth: `facelift synth portraits` draws (random pose, key light and gradient
 * background; the renderer knows each pixel's coverage), each matting model's alpha compared with the true one —
 * mean absolute error and IoU of the alpha > 0.5 masks, averaged over the portraits (worst portrait in the notes),
 * and the time per portrait. The baseline is no matting at all (alpha 1 everywhere). MODNet and U²-Net are scored
 * when their ONNX files are given (they are downloads, so not there offline); the packaged selfie segmenter always.
 */
import { numberArg } from './args.ts';
import type { BenchRun, Figure } from './figure.ts';

interface Score {
  mae: number[];
  iou: number[];
  ms: number[];
}

/**
 * The synthetic bust ends in mid-air; a photographed person's body goes on to the frame's edge, and a model made for
 * photos says so. This truth continues the body: below the lowest opaque pixel of each column that the bust reaches
 * in the lower half, opaque down to the bottom row.
 */
function bodyContinued(truth: Float32Array, w: number, h: number): Float32Array {
  const out = truth.slice();
  for (let x = 0; x < w; x++) {
    let lowest = -1;
    for (let y = h - 1; y >= h >> 1 && lowest < 0; y--) if (truth[y * w + x]! > 0.5) lowest = y;
    for (let y = lowest + 1; lowest >= 0 && y < h; y++) out[y * w + x] = 1;
  }
  return out;
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export const run: BenchRun = async function* (args) {
  const count = numberArg(args, 'count', 50);
  const seed = numberArg(args, 'seed', 7);
  const resolution = numberArg(args, 'resolution', 512);
  const threads = numberArg(args, 'threads', 2);
  const { generateHead } = await import('../src/synth/head.ts');
  const { sampleHeadParams } = await import('../src/synth/params.ts');
  const { portraitCamera, portraitSeed, samplePortraitSetup } = await import('../src/synth/portraits.ts');
  const { compositeRgb, renderRgba } = await import('../src/synth/render.ts');
  const { SelfieMatter } = await import('../src/preprocess/selfie.ts');
  const { OnnxMatter } = await import('../src/preprocess/matting.ts');
  type Matter = import('../src/preprocess/matting.ts').Matter & { dispose(): Promise<void> };

  const matters: [string, Matter][] = [['selfie (MediaPipe, packaged)', await SelfieMatter.open({ threads })]];
  for (const kind of ['modnet', 'u2net'] as const) {
    const file = flag(args, `--${kind}`);
    if (file) matters.push([kind === 'modnet' ? 'MODNet' : 'U²-Net', await OnnxMatter.open(kind, file)]);
  }
  const empty = (): Score => ({ mae: [], iou: [], ms: [] });
  const scores = new Map<string, Score>(matters.map(([n]) => [n, empty()]));
  const continued = new Map<string, Score>(matters.map(([n]) => [n, empty()]));
  const none = empty();
  const noneContinued = empty();

  for (let index = 0; index < count; index++) {
    const s = portraitSeed(seed, index);
    const head = generateHead(sampleHeadParams(s, { lighting: 'photo' }));
    const { pose, background } = samplePortraitSetup(s);
    const img = renderRgba(head.gaussians, portraitCamera(pose, resolution));
    const H = img.height;
    const data = compositeRgb(img, (row) => {
      const t = H > 1 ? row / (H - 1) : 0;
      return [0, 1, 2].map((c) => background.top[c]! + (background.bottom[c]! - background.top[c]!) * t) as
        [number, number, number];
    });
    const truth = new Float32Array(img.width * img.height);
    for (let i = 0; i < truth.length; i++) truth[i] = img.data[4 * i + 3]! / 255;
    const body = bodyContinued(truth, img.width, img.height);
    const rgb = { data, width: img.width, height: img.height, channels: 3 as const };
    const opaque = new Float32Array(truth.length).fill(1);
    score(none, truth, opaque, 0);
    score(noneContinued, body, opaque, 0);
    for (const [name, m] of matters) {
      const t0 = performance.now();
      const alpha = await m.matte(rgb);
      score(scores.get(name)!, truth, alpha, performance.now() - t0);
      score(continued.get(name)!, body, alpha, 0);
    }
  }
  for (const [, m] of matters) await m.dispose();

  const what = `${count} synth portraits at ${resolution}², seed ${seed}`;
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
  const base = { mae: mean(none.mae), iou: mean(none.iou) };
  const baseBody = { mae: mean(noneContinued.mae), iou: mean(noneContinued.iou) };
  for (const [name, s] of scores) {
    const c = continued.get(name)!;
    const rows: Figure[] = [
      {
        name: `${name}: alpha MAE`, value: mean(s.mae), unit: '', baseline: base.mae, baselineName: 'no matting',
        higherIsBetter: false, note: `${what}; worst ${Math.max(...s.mae).toFixed(4)}`,
      },
      {
        name: `${name}: IoU (alpha > 0.5)`, value: mean(s.iou), unit: '', baseline: base.iou,
        baselineName: 'no matting',
        higherIsBetter: true, note: `worst ${Math.min(...s.iou).toFixed(4)}`,
      },
      {
        name: `${name}: alpha MAE, body continued`, value: mean(c.mae), unit: '', baseline: baseBody.mae,
        baselineName: 'no matting', higherIsBetter: false,
        note: `truth opaque below the bust to the frame's edge, as in a photo; worst ${Math.max(...c.mae).toFixed(4)}`,
      },
      {
        name: `${name}: IoU, body continued`, value: mean(c.iou), unit: '', baseline: baseBody.iou,
        baselineName: 'no matting', higherIsBetter: true, note: `worst ${Math.min(...c.iou).toFixed(4)}`,
      },
      {
        name: `${name}: time per portrait`, value: median(s.ms.slice(1)),
        unit: 'ms', note: `median after the first; ${threads} threads; includes resizing in and out`,
      },
    ];
    yield* rows;
  }
};

function score(s: Score, truth: Float32Array, alpha: Float32Array, ms: number): void {
  let err = 0;
  let inter = 0;
  let union = 0;
  for (let i = 0; i < truth.length; i++) {
    err += Math.abs(alpha[i]! - truth[i]!);
    const a = alpha[i]! > 0.5;
    const b = truth[i]! > 0.5;
    if (a && b) inter++;
    if (a || b) union++;
  }
  s.mae.push(err / truth.length);
  s.iou.push(union ? inter / union : 1);
  s.ms.push(ms);
}
