import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PickleError, PyDict, unpickle } from './pickle.ts';
import { torchGlobals } from './torch-pt.ts';
import { openWeights } from './weights.ts';
import { PickleBytes } from './testing/pickle-bytes.ts';
import { writeZip } from './testing/zip-writer.ts';

const opts = { globals: torchGlobals(), source: 'test.pkl' };

test('a GLOBAL that is not allow-listed (os.system) is refused and nothing runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pickle-'));
  const marker = join(dir, 'pwned');
  try {
    // c os\nsystem\n ( X'touch …' t R .   ==  os.system("touch …") in a real unpickler
    const p = new PickleBytes().proto(2).global('os', 'system').mark().str(`touch ${marker}`).op(0x74, 0x52).stop();
    assert.throws(() => unpickle(p.bytes(), opts), (e: unknown) => e instanceof PickleError && /refusing to load global "os\.system"/.test(e.message));
    assert.equal(existsSync(marker), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('STACK_GLOBAL builtins.eval, posix.system and torch lookalikes are refused', () => {
  for (const [m, n] of [['builtins', 'eval'], ['posix', 'system'], ['torch', 'load'], ['torch._utils', '_rebuild_device_tensor_from_numpy'], ['collections', 'defaultdict']] as const) {
    const p = new PickleBytes('proto4').proto(4).global(m, n).str('1+1').op(0x85, 0x52).stop();
    assert.throws(() => unpickle(p.bytes(), opts), new RegExp(`refusing to load global "${m}\\.${n}"`));
  }
});

test('INST, OBJ and EXT opcodes and calling a non-global are refused', () => {
  const inst = new PickleBytes().mark().ascii('ios\nsystem\n').stop();
  assert.throws(() => unpickle(inst.bytes(), opts), /INST\/OBJ/);
  assert.throws(() => unpickle(Uint8Array.of(0x80, 2, 0x82, 1, 0x2e), opts), /EXT/);
  const reduceStr = new PickleBytes().proto(2).str('os').op(0x29, 0x52).stop();
  assert.throws(() => unpickle(reduceStr.bytes(), opts), /REDUCE on something that is not an allowed global/);
  assert.throws(() => unpickle(Uint8Array.of(0x80, 2, 0x7d), opts), /truncated pickle/);
  assert.throws(() => unpickle(Uint8Array.of(0xff), opts), /unknown pickle opcode 0xff/);
});

test('plain values in protocol 2 and 4 styles: ints of every width, floats, strings, bytes, memo, bools, None', () => {
  for (const style of ['proto2', 'proto4'] as const) {
    const p = new PickleBytes(style).proto(style === 'proto4' ? 4 : 2).op(0x5d).mark();
    p.int(7).int(300).int(-5).int(70000).int(2 ** 40).int(-(2 ** 40)).int(2n ** 70n);
    p.op(0x47, ...Buffer.from([0x3f, 0xf8, 0, 0, 0, 0, 0, 0])); // BINFLOAT 1.5 (big-endian)
    p.str('héllo').op(0x43, 2, 0xde, 0xad).op(0x88, 0x89, 0x4e);
    p.op(0x65); // APPENDS
    if (style === 'proto2') p.op(0x71, 9).op(0x30).op(0x68, 9); // BINPUT, POP, BINGET → the same list
    else p.op(0x94).op(0x30).op(0x68, 1); // memo 0 is the string's MEMOIZE
    p.stop();
    const v = unpickle(p.bytes(), opts) as unknown[];
    assert.deepEqual(v.slice(0, 8), [7, 300, -5, 70000, 2 ** 40, -(2 ** 40), 2n ** 70n, 1.5]);
    assert.equal(v[8], 'héllo');
    assert.deepEqual(v[9], Uint8Array.of(0xde, 0xad));
    assert.deepEqual(v.slice(10), [true, false, null]);
  }
});

test('dicts: SETITEM, SETITEMS, DICT and OrderedDict keep insertion order', () => {
  const p = new PickleBytes().proto(2).global('collections', 'OrderedDict').op(0x29, 0x52)
    .mark().str('b').int(1).str('a').int(2).op(0x75).str('c').mark().int(1).int(2).op(0x64).op(0x73).stop();
  const d = unpickle(p.bytes(), opts) as PyDict;
  assert.deepEqual([...d.keys()], ['b', 'a', 'c']);
  assert.deepEqual([...(d.get('c') as PyDict)], [[1, 2]]);
});

test('a malicious pickle inside a .pt zip is refused by openWeights with a message naming the global', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pickle-'));
  try {
    const marker = join(dir, 'pwned');
    const pkl = new PickleBytes().proto(2).global('subprocess', 'Popen').mark().str(`touch ${marker}`).op(0x74, 0x52).stop();
    await writeZip(join(dir, 'evil.pt'), [{ name: 'evil/data.pkl', data: pkl.bytes() }, { name: 'evil/version', data: Buffer.from('3\n') }]);
    await assert.rejects(openWeights(join(dir, 'evil.pt')), /refusing to load global "subprocess\.Popen"/);
    assert.equal(existsSync(marker), false);
    writeFileSync(join(dir, 'plain.pt'), 'not a zip at all, just some text that is long enough');
    await assert.rejects(openWeights(join(dir, 'plain.pt')), /not a zip file, nor a legacy torch\.save file/);
    // A legacy-format (non-zip) file goes through the same allow-list.
    writeFileSync(join(dir, 'evil-legacy.pt'), pkl.bytes());
    await assert.rejects(openWeights(join(dir, 'evil-legacy.pt')), /refusing to load global "subprocess\.Popen"/);
    assert.equal(existsSync(marker), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
