/** Test helpers: run a small graph on given inputs and compare with a reference within stated tolerances. */
import assert from 'node:assert/strict';
import { Graph, type Tensor } from '../graph.ts';
import { evaluate, type HostTensor, type ParamStore } from '../session.ts';
import { arr, closeness, randn, rng, type Arr } from './reference.ts';

export interface Case {
  /** Input shapes by name; values are N(0,1)·scale unless `values` gives them. */
  inputs: Record<string, number[]>;
  values?: Record<string, Float32Array>;
  scale?: number;
  seed?: number;
}

export function makeInputs(c: Case): Record<string, Float32Array> {
  const r = rng(c.seed ?? 1);
  const out: Record<string, Float32Array> = {};
  for (const [k, s] of Object.entries(c.inputs)) out[k] = c.values?.[k] ?? randn(r, s.reduce((a, b) => a * b, 1), c.scale ?? 1);
  return out;
}

/** Builds `build(inputs)` in a fresh graph, runs it, and returns the output with the reference arrays of the inputs. */
export async function runCase(c: Case, build: (xs: Record<string, Tensor>, g: Graph) => Tensor, params?: ParamStore): Promise<{ out: HostTensor; refs: Record<string, Arr> }> {
  const g = new Graph();
  const data = makeInputs(c);
  const xs = Object.fromEntries(Object.entries(c.inputs).map(([k, s]) => [k, g.input(k, s)]));
  const y = build(xs, g);
  const res = await evaluate({ y }, data, params ? { params } : {});
  const refs = Object.fromEntries(Object.entries(c.inputs).map(([k, s]) => [k, arr(data[k]!, s)]));
  return { out: res.y!, refs };
}

export function assertClose(actual: HostTensor, expected: Arr, atol = 1e-5, rtol = 1e-4, label = ''): void {
  assert.deepEqual([...actual.shape], expected.shape, `${label}: shape`);
  const a = actual.data instanceof Uint8Array ? Float64Array.from(actual.data) : (actual.data as Float32Array);
  const { worst, at } = closeness(a, expected.data, atol, rtol);
  assert.ok(worst <= 1, `${label}: element ${at}: got ${a[at]}, want ${expected.data[at]} (|err| > ${atol} + ${rtol}·|want|)`);
}
