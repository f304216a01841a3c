/** One benchmark figure, printed as a table row or (with --json) one JSON line (design.md §6). */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The same quantity from the side-by-side baseline run, when there is one. */
  baseline?: number;
  /** "Times as good as the baseline": > 1 is better. Computed from value/baseline and `higherIsBetter`. */
  ratio?: number;
  /** What the baseline is (e.g. "raw ORT graph", "PyTorch 2.x CPU"). */
  baselineName?: string;
  /** Defaults to true for throughput-like units; false for times and memory. */
  higherIsBetter?: boolean;
  note?: string;
}

/** A benchmark module: `bench/<name>.ts` exports `run(args)` yielding figures as they are measured. */
export type BenchRun = (args: string[]) => AsyncIterable<Figure>;

const LOWER_IS_BETTER_UNITS = new Set(['s', 'ms', 'us', 'MiB', 'GiB', 'MB', 'GB', 'B', 's/frame', 'ms/frame', 'ms/step', 's/step']);

export function withRatio(f: Figure): Figure {
  if (f.baseline === undefined || f.ratio !== undefined) return f;
  const higher = f.higherIsBetter ?? !LOWER_IS_BETTER_UNITS.has(f.unit);
  const ratio = higher ? f.value / f.baseline : f.baseline / f.value;
  return { ...f, ratio };
}
