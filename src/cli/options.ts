import { UserError } from '../util/errors.ts';

/** A commander argument parser for an integer flag in [lo, hi]; a bad value is a one-line UserError. */
export function intOption(name: string, lo: number, hi: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new UserError(`${name} must be an integer in ${lo}..${hi}, got "${v}"`);
    return n;
  };
}

/** A commander argument parser for a strictly positive number flag. */
export function positiveOption(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UserError(`${name} must be a positive number, got "${v}"`);
    return n;
  };
}
