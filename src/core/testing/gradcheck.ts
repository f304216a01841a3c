/**
 * Finite-difference gradient check. For L(x) = Σ y(x)·r (r a fixed random cotangent, summed in float64 on the
 * host) and a random direction v per input, compares ⟨dL/dx, v⟩ from the core's VJP with the central
 * difference (L(x+εv) − L(x−εv)) / 2ε. Passing means |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|).
 */
import assert from 'node:assert/strict';
import { Graph, type Tensor } from '../graph.ts';
import { vjp } from '../autodiff.ts';
import { Session } from '../session.ts';
import { randn, rng } from './reference.ts';

export interface GradCase {
  inputs: Record<string, number[]>;
  build: (xs: Record<string, Tensor>, g: Graph) => Tensor;
  /** Reshapes the random N(0,1) values of an input (e.g. keeps them away from a kink or a pole). */
  prep?: Record<string, (v: Float32Array) => Float32Array>;
  /** Inputs to differentiate (default: all). */
  wrt?: string[];
  eps?: number;
  rtol?: number;
  atol?: number;
  seed?: number;
}

export async function gradCheck(label: string, c: GradCase): Promise<void> {
  const eps = c.eps ?? 1e-2, rtol = c.rtol ?? 1e-2, atol = c.atol ?? 1e-3;
  const r = rng(c.seed ?? 11);
  const g = new Graph();
  const xs = Object.fromEntries(Object.entries(c.inputs).map(([k, s]) => [k, g.input(k, s)]));
  const y = c.build(xs, g);
  const wrt = c.wrt ?? Object.keys(c.inputs);
  const cot = g.input('%cotangent', y.shape, y.dtype);
  const grads = vjp([y], [cot], wrt.map((k) => xs[k]!));
  const outputs: Record<string, Tensor> = { y };
  wrt.forEach((k, i) => { outputs[`grad_${k}`] = grads[i]!; });
  const session = await Session.create(outputs);

  const values: Record<string, Float32Array> = {};
  for (const [k, s] of Object.entries(c.inputs)) {
    const v = randn(r, s.reduce((a, b) => a * b, 1));
    values[k] = c.prep?.[k]?.(v) ?? v;
  }
  const rv = randn(r, y.size);
  const loss = async (feeds: Record<string, Float32Array>): Promise<number> => {
    const out = (await session.run({ ...feeds, '%cotangent': rv })).y!.data as Float32Array;
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * rv[i]!;
    return s;
  };
  const res = await session.run({ ...values, '%cotangent': rv });
  for (const k of wrt) {
    const gk = res[`grad_${k}`]!.data as Float32Array;
    const v = randn(r, gk.length);
    let analytic = 0;
    for (let i = 0; i < v.length; i++) analytic += gk[i]! * v[i]!;
    const plus = values[k]!.map((x, i) => x + eps * v[i]!);
    const minus = values[k]!.map((x, i) => x - eps * v[i]!);
    const numeric = ((await loss({ ...values, [k]: plus })) - (await loss({ ...values, [k]: minus }))) / (2 * eps);
    const err = Math.abs(analytic - numeric);
    assert.ok(err <= atol + rtol * Math.max(Math.abs(analytic), Math.abs(numeric)),
      `${label}: d/d${k}: analytic ${analytic}, numeric ${numeric} (|err| ${err.toExponential(2)} > ${atol} + ${rtol}·max)`);
  }
  await session.release();
}
