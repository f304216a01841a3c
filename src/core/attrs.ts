/** Short constructors for ONNX attribute values, used by lowering rules. */
import type { AttrValue } from './proto.ts';

export const A = {
  i: (value: number): AttrValue => ({ kind: 'int', value }),
  f: (value: number): AttrValue => ({ kind: 'float', value }),
  s: (value: string): AttrValue => ({ kind: 'string', value }),
  is: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
  fs: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
};
