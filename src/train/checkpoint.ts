/**
 * Training checkpoints in the reference's format (spec gslrm.md §8): `ckpt_{fwdbwd_pass_step:016d}.pt`, a torch.save
 * zip holding `{"model": state_dict, "optimizer": AdamW state_dict, "lr_scheduler": LambdaLR state_dict,
 * "fwdbwd_pass_step", "param_update_step"}` — loadable by `torch.load` and by `facelift reconstruct` — plus a
 * `"facelift"` entry with what exact resume needs beyond that (the logged history). Written to a temporary name,
 * fsynced and renamed; the free disk space is checked first.
 */
import { mkdirSync, readdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { PyDict } from '../io/pickle.ts';
import { TorchFile } from '../io/torch-pt.ts';
import { pyDict, pyFloat, pyTuple, saveTorch, torchTensor, type PyValue } from '../io/torch-save.ts';
import { UserError } from '../util/errors.ts';
import type { Moments } from './optim/adamw.ts';
import type { Ema } from './optim/ema.ts';
import { dynamicMap } from './optim/quant8.ts';

export interface AdamState {
  /** Updates applied so far (AdamW's bias-correction step). */
  step: number;
  /** Per parameter: fp32 `exp_avg`/`exp_avg_sq` (torch.optim.AdamW) or 8-bit states (bitsandbytes' layout). */
  moments: Map<string, Moments>;
}

export interface ParamGroup {
  names: string[];
  weightDecay: number;
}

export interface TrainState {
  /** Every model tensor in state-dict order (frozen ones included). */
  model: ReadonlyArray<{ name: string; shape: readonly number[]; data: Float32Array }>;
  adam: AdamState;
  /** Optimizer parameter groups (torch numbers parameters across groups in order). */
  groups: readonly ParamGroup[];
  lr: number;
  betas: readonly [number, number];
  eps: number;
  /** Scheduler steps taken (= the index of the next update's rate). */
  schedulerSteps: number;
  /** Rate multiplier of the next update (for `_last_lr`). */
  lastLr: number;
  fwdbwdPassStep: number;
  paramUpdateStep: number;
  /** Logged rows, for the curves and `--json` continuity. */
  history: ReadonlyArray<Record<string, number>>;
  /** The weights' moving average, when the run keeps one. */
  ema?: Ema;
}

export const checkpointName = (step: number): string => `ckpt_${String(step).padStart(16, '0')}.pt`;

/** `ckpt_*.pt` files of a folder, newest (highest step) first; [] when the folder does not exist. */
export function listCheckpoints(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^ckpt_\d+\.pt$/.test(n))
    .sort()
    .reverse()
    .map((n) => join(dir, n));
}

/** Refuses to start a write that would not fit (with a 5 % margin), naming the sizes. */
export function checkFreeDisk(dir: string, bytes: number): void {
  const s = statfsSync(dir);
  const free = s.bavail * s.bsize;
  if (free < bytes * 1.05) {
    const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    throw new UserError(
      `not enough free disk for a checkpoint: ${gb(bytes)} needed, ${gb(free)} free in the checkpoint folder; free some space or point checkpoint_dir elsewhere`,
    );
  }
}

/** Parameter names in the optimizer's numbering (its groups in order). */
export function paramOrder(groups: readonly ParamGroup[]): string[] {
  return groups.flatMap((g) => g.names);
}

/** torch's `AdamW.state_dict()` (or bitsandbytes' 8-bit layout) of a training state. */
export function optimizerStateDict(s: TrainState): PyValue {
  const index = new Map<string, number>();
  s.groups.forEach((g) => g.names.forEach((n) => index.set(n, index.size)));
  const state: Array<[number, PyValue]> = [];
  for (const [name, i] of index) {
    const mo = s.adam.moments.get(name);
    if (!mo) continue;
    const step: [string, PyValue] = ['step', torchTensor(Float32Array.of(s.adam.step), [])];
    if (mo.kind === 'fp32') {
      const shape = s.model.find((t) => t.name === name)?.shape ?? [mo.m.length];
      state.push([i, pyDict([step, ['exp_avg', torchTensor(mo.m, shape)], ['exp_avg_sq', torchTensor(mo.v, shape)]])]);
    } else {
      state.push([
        i,
        pyDict([
          step,
          ['state1', torchTensor(mo.q1, [mo.q1.length], 'U8')],
          ['state2', torchTensor(mo.q2, [mo.q2.length], 'U8')],
          ['absmax1', torchTensor(mo.absmax1, [mo.absmax1.length])],
          ['absmax2', torchTensor(mo.absmax2, [mo.absmax2.length])],
          ['qmap1', torchTensor(dynamicMap(true), [256])],
          ['qmap2', torchTensor(dynamicMap(false), [256])],
        ]),
      ]);
    }
  }
  let next = 0;
  const groups = s.groups.map((g) =>
    pyDict([
      ['lr', pyFloat(s.lr * s.lastLr)],
      ['betas', pyTuple(pyFloat(s.betas[0]), pyFloat(s.betas[1]))],
      ['eps', pyFloat(s.eps)],
      ['weight_decay', pyFloat(g.weightDecay)],
      ['amsgrad', false],
      ['foreach', null],
      ['maximize', false],
      ['capturable', false],
      ['differentiable', false],
      ['fused', null],
      ['initial_lr', pyFloat(s.lr)],
      ['params', g.names.map(() => next++)],
    ]),
  );
  return pyDict([
    ['state', pyDict(state)],
    ['param_groups', groups],
  ]);
}

/** torch's `LambdaLR.state_dict()`. */
export function schedulerStateDict(s: TrainState): PyValue {
  return pyDict([
    ['base_lrs', s.groups.map(() => pyFloat(s.lr))],
    ['last_epoch', s.schedulerSteps],
    ['verbose', false],
    ['_step_count', s.schedulerSteps + 1],
    ['_get_lr_called_within_step', false],
    ['_last_lr', s.groups.map(() => pyFloat(s.lr * s.lastLr))],
    ['lr_lambdas', s.groups.map(() => null)],
  ]);
}

export async function writeCheckpoint(dir: string, s: TrainState): Promise<string> {
  const model = pyDict(
    s.model.map((t) => [t.name, torchTensor(t.data, t.shape)] as const),
    true,
  );
  const value = pyDict([
    ['model', model],
    ['optimizer', optimizerStateDict(s)],
    ['lr_scheduler', schedulerStateDict(s)],
    ['fwdbwd_pass_step', s.fwdbwdPassStep],
    ['param_update_step', s.paramUpdateStep],
    [
      'facelift',
      pyDict([
        ['param_order', paramOrder(s.groups)],
        ['history', s.history.map((r) => pyDict(Object.entries(r).map(([k, v]) => [k, pyFloat(v)] as const)))],
      ]),
    ],
  ]);
  mkdirSync(dir, { recursive: true });
  const bytes = s.model.reduce((n, t) => n + t.data.byteLength, 0) * 3 + 1e6;
  checkFreeDisk(dir, bytes);
  const path = join(dir, checkpointName(s.fwdbwdPassStep));
  await saveTorch(path, value, checkpointName(s.fwdbwdPassStep).replace(/\.pt$/, ''));
  return path;
}

/** What a checkpoint gives back: the weights always; the rest when it is a full training checkpoint. */
export interface LoadedCheckpoint {
  path: string;
  model: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
  training: null | {
    adam: AdamState;
    schedulerSteps: number;
    fwdbwdPassStep: number;
    paramUpdateStep: number;
    history: Record<string, number>[];
  };
}

/**
 * Reads a checkpoint (ours or the reference's); `{"model": …}` or a bare state dict. Optimizer entries are
 * numbered; ours record the names in order, and for the reference's `groups` gives the order (its decay group,
 * then its no-decay group, each in state-dict order).
 */
export async function readCheckpoint(path: string, groups: readonly ParamGroup[] = []): Promise<LoadedCheckpoint> {
  const f = await TorchFile.open(path);
  try {
    const root = f.root;
    const hasModel = root instanceof PyDict && root.get('model') instanceof PyDict;
    const prefix = hasModel ? 'model.' : '';
    const model = new Map<string, Float32Array>();
    const shapes = new Map<string, number[]>();
    for (const k of f.keys()) {
      if (!k.startsWith(prefix)) continue;
      const name = k.slice(prefix.length);
      model.set(name, await f.readF32(k));
      shapes.set(name, f.info(k).shape);
    }
    if (!hasModel || !(root instanceof PyDict) || !(root.get('optimizer') instanceof PyDict))
      return { path, model, shapes, training: null };

    const hist = root.get('facelift');
    const order =
      hist instanceof PyDict && Array.isArray(hist.get('param_order')) ? (hist.get('param_order') as string[]) : null;
    const adam = await readAdamState(
      f,
      root.get('optimizer') as PyDict,
      'optimizer.',
      order ?? paramOrder(groups),
      path,
    );
    const sched = root.get('lr_scheduler');
    const schedulerSteps =
      sched instanceof PyDict && typeof sched.get('last_epoch') === 'number' ? (sched.get('last_epoch') as number) : 0;
    const num = (k: string) => {
      const v = root.get(k);
      return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0;
    };
    const history: Record<string, number>[] = [];
    if (hist instanceof PyDict && Array.isArray(hist.get('history'))) {
      for (const row of hist.get('history') as unknown[]) {
        if (row instanceof PyDict) history.push(Object.fromEntries([...row].map(([k, v]) => [String(k), Number(v)])));
      }
    }
    return {
      path,
      model,
      shapes,
      training: {
        adam,
        schedulerSteps,
        fwdbwdPassStep: num('fwdbwd_pass_step'),
        paramUpdateStep: num('param_update_step'),
        history,
      },
    };
  } finally {
    await f.close();
  }
}

/**
 * An optimizer state dict's moments, named by `order` (its parameter numbering). `prefix` is where the dict sits
 * in the file's flattened tensor names ('optimizer.' inside a training checkpoint, '' for an optimizer.bin).
 */
export async function readAdamState(
  f: TorchFile,
  opt: PyDict,
  prefix: string,
  order: readonly string[],
  path: string,
): Promise<AdamState> {
  const moments = new Map<string, Moments>();
  let step = 0;
  const state = opt.get('state');
  if (state instanceof PyDict) {
    for (const key of state.keys()) {
      const name = order[Number(key)];
      if (!name)
        throw new UserError(`${path}: optimizer state for parameter index ${String(key)} that the model does not have`);
      const at = `${prefix}state.${String(key)}.`;
      if (f.has(`${at}state1`)) {
        const q = async (k: string) => {
          const d = await f.read(`${at}${k}`);
          return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
        };
        moments.set(name, {
          kind: '8bit',
          q1: await q('state1'),
          q2: await q('state2'),
          absmax1: await f.readF32(`${at}absmax1`),
          absmax2: await f.readF32(`${at}absmax2`),
        });
      } else {
        moments.set(name, {
          kind: 'fp32',
          m: await f.readF32(`${at}exp_avg`),
          v: await f.readF32(`${at}exp_avg_sq`),
        });
      }
      step = (await f.readF32(`${at}step`))[0]!;
    }
  }
  return { step, moments };
}
