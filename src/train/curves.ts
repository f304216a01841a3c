/**
 * Training curves as a PNG: one panel per series (loss on a log axis, PSNR, grad norm, …) against the step, drawn
 * as SVG and rasterised by sharp (librsvg), so axes carry readable numbers without a plotting dependency.
 */
import sharp from 'sharp';

export interface Series {
  key: string;
  label: string;
  log?: boolean;
}

const W = 420,
  H = 260,
  M = { l: 62, r: 14, t: 28, b: 36 };

export async function writeCurves(
  path: string,
  rows: ReadonlyArray<Record<string, number>>,
  series: readonly Series[],
): Promise<void> {
  const panels = series.map((s, i) => panel(rows, s, i));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W * series.length}" height="${H}" font-family="DejaVu Sans, sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>${panels.join('')}</svg>`;
  await sharp(Buffer.from(svg)).png().toFile(path);
}

function panel(rows: ReadonlyArray<Record<string, number>>, s: Series, index: number): string {
  const pts = rows
    .filter((r) => Number.isFinite(r[s.key]) && Number.isFinite(r.step) && (!s.log || r[s.key]! > 0))
    .map((r) => [r.step!, s.log ? Math.log10(r[s.key]!) : r[s.key]!] as const);
  const x0 = index * W;
  const head = `<text x="${x0 + W / 2}" y="16" text-anchor="middle" font-size="13">${esc(s.label)}${s.log ? ' (log)' : ''}</text>`;
  const frame = `<rect x="${x0 + M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#888"/>`;
  if (pts.length === 0)
    return `${head}${frame}<text x="${x0 + W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no data yet</text>`;
  let [xmin, xmax] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [ymin, ymax] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (xmax === xmin) {
    xmin -= 1;
    xmax += 1;
  }
  if (ymax === ymin) {
    ymin -= 0.5;
    ymax += 0.5;
  }
  const pad = (ymax - ymin) * 0.05;
  ymin -= pad;
  ymax += pad;
  const px = (x: number) => x0 + M.l + ((x - xmin) / (xmax - xmin)) * (W - M.l - M.r);
  const py = (y: number) => M.t + (1 - (y - ymin) / (ymax - ymin)) * (H - M.t - M.b);
  const path = (q: ReadonlyArray<readonly [number, number]>) =>
    q.map((p, i) => `${i ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join('');
  // Logged values are single passes (noisy); a centred moving average over 9 rows shows the trend.
  const smooth = pts.map((p, i) => {
    const w = pts.slice(Math.max(0, i - 4), i + 5);
    return [p[0], w.reduce((a, q) => a + q[1], 0) / w.length] as const;
  });
  const ticks: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const y = ymin + ((ymax - ymin) * k) / 4,
      x = xmin + ((xmax - xmin) * k) / 4;
    const yl = s.log ? fmt(10 ** y) : fmt(y);
    ticks.push(`<text x="${x0 + M.l - 4}" y="${py(y) + 4}" text-anchor="end">${yl}</text>`);
    ticks.push(`<line x1="${x0 + M.l}" x2="${x0 + W - M.r}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/>`);
    ticks.push(`<text x="${px(x)}" y="${H - M.b + 14}" text-anchor="middle">${Math.round(x)}</text>`);
  }
  const xlabel = `<text x="${x0 + M.l + (W - M.l - M.r) / 2}" y="${H - 6}" text-anchor="middle" fill="#555">step</text>`;
  return `${head}${ticks.join('')}${frame}<path d="${path(pts)}" fill="none" stroke="#aec7e8" stroke-width="1"/>`
    + `<path d="${path(smooth)}" fill="none" stroke="#1f4e99" stroke-width="2"/>${xlabel}`;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-2 || a >= 1e4)) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

function esc(s: string): string {
  return s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
}
