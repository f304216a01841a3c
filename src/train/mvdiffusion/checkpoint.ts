/**
 * MV-diffusion checkpoints in the layout `accelerator.save_state` + train_diffusion.py's hooks write
 * (spec mvdiffusion.md §7): `<output_dir>/checkpoint-<update>/` holding `unet/` and `unet_ema/` in the diffusers
 * layout (config.json + diffusion_pytorch_model.safetensors; the EMA config carries `EMAModel`'s fields, as
 * `EMAModel.save_pretrained` writes them), `optimizer.bin` (torch AdamW state dict), `scheduler.bin` (LambdaLR),
 * and `facelift_state.json` with what exact resume needs beyond that (pass counters, the logged history; data
 * order and random draws are functions of (seed, pass)). A checkpoint is written into a temporary folder and
 * renamed, then the oldest are removed down to `checkpoints_total_limit`.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PyDict } from '../../io/pickle.ts';
import { SafetensorsFile, writeSafetensors } from '../../io/safetensors.ts';
import { TorchFile } from '../../io/torch-pt.ts';
import { saveTorch } from '../../io/torch-save.ts';
import { UserError } from '../../util/errors.ts';
import {
  checkFreeDisk,
  optimizerStateDict,
  paramOrder,
  readAdamState,
  schedulerStateDict,
  type AdamState,
  type TrainState,
} from '../checkpoint.ts';
import { Ema } from '../optim/ema.ts';
import type { CheckpointStore } from '../trainer.ts';

export const WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';

/** `checkpoint-<n>` folders of `dir`, highest step first (temporary folders excluded). */
export function listMvCheckpoints(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^checkpoint-\d+$/.test(n))
    .sort((a, b) => Number(b.split('-')[1]) - Number(a.split('-')[1]))
    .map((n) => join(dir, n));
}

/** Removes folders a killed run left half-written. */
export function removePartialCheckpoints(dir: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names)
    if (/^checkpoint-\d+\.tmp-\d+$/.test(n)) rmSync(join(dir, n), { recursive: true, force: true });
}

/** Writes one diffusers model folder: config.json and fp32 weights in state-dict order. */
export async function writeModelFolder(
  dir: string,
  config: Record<string, unknown>,
  tensors: ReadonlyArray<{ name: string; shape: readonly number[]; data: Float32Array }>,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeSafetensors(
    join(dir, WEIGHTS_FILE),
    new Map(tensors.map((t) => [t.name, { shape: t.shape, data: t.data }])),
    { format: 'pt' },
  );
}

export class MvCheckpointStore implements CheckpointStore {
  constructor(
    private readonly dir: string,
    private readonly unetConfig: Record<string, unknown>,
    private readonly totalLimit: number | null,
    private readonly say: (l: string) => void,
  ) {}

  async write(s: TrainState): Promise<string> {
    mkdirSync(this.dir, { recursive: true });
    const bytes = s.model.reduce((n, t) => n + t.data.byteLength, 0) * (s.ema ? 4 : 3) + 1e6;
    checkFreeDisk(this.dir, bytes);
    const final = join(this.dir, `checkpoint-${s.paramUpdateStep}`);
    const tmp = `${final}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    await writeModelFolder(join(tmp, 'unet'), this.unetConfig, s.model);
    if (s.ema) {
      const shadow = s.model.map((t) => ({ ...t, data: s.ema!.shadow.get(t.name) ?? t.data }));
      await writeModelFolder(join(tmp, 'unet_ema'), { ...this.unetConfig, ...s.ema.configFields() }, shadow);
    }
    await saveTorch(join(tmp, 'optimizer.bin'), optimizerStateDict(s), 'optimizer');
    await saveTorch(join(tmp, 'scheduler.bin'), schedulerStateDict(s), 'scheduler');
    writeFileSync(
      join(tmp, 'facelift_state.json'),
      `${JSON.stringify({
        global_step: s.paramUpdateStep,
        fwdbwd_pass_step: s.fwdbwdPassStep,
        scheduler_steps: s.schedulerSteps,
        param_order: paramOrder(s.groups),
        history: s.history,
      })}\n`,
    );
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    if (this.totalLimit !== null) {
      for (const old of listMvCheckpoints(this.dir).slice(this.totalLimit)) {
        rmSync(old, { recursive: true, force: true });
        this.say(`removed ${old} (checkpoints_total_limit ${this.totalLimit})`);
      }
    }
    return final;
  }
}

export interface LoadedMvCheckpoint {
  path: string;
  model: Map<string, Float32Array>;
  ema: Ema | null;
  training: {
    adam: AdamState;
    schedulerSteps: number;
    fwdbwdPassStep: number;
    paramUpdateStep: number;
    history: Record<string, number>[];
  };
}

async function readModelFolder(dir: string, names: readonly string[]): Promise<Map<string, Float32Array>> {
  const f = await SafetensorsFile.open(join(dir, WEIGHTS_FILE));
  try {
    const out = new Map<string, Float32Array>();
    for (const n of names) {
      if (!f.has(n)) throw new UserError(`${dir}: ${WEIGHTS_FILE} lacks ${n} (a checkpoint of another model?)`);
      out.set(n, await f.readF32(n));
    }
    return out;
  } finally {
    await f.close();
  }
}

/** Reads a checkpoint folder written by `MvCheckpointStore` for a UNet with parameters `names`. */
export async function readMvCheckpoint(path: string, names: readonly string[]): Promise<LoadedMvCheckpoint> {
  let state: {
    global_step: number;
    fwdbwd_pass_step: number;
    scheduler_steps: number;
    param_order: string[];
    history: Record<string, number>[];
  };
  try {
    state = JSON.parse(readFileSync(join(path, 'facelift_state.json'), 'utf8')) as typeof state;
  } catch (e) {
    throw new UserError(
      `${path}: no readable facelift_state.json (${(e as Error).message.split('\n')[0]}); not a checkpoint this trainer wrote`,
    );
  }
  const model = await readModelFolder(join(path, 'unet'), names);
  let ema: Ema | null = null;
  try {
    const cfg = JSON.parse(readFileSync(join(path, 'unet_ema', 'config.json'), 'utf8')) as Record<string, number>;
    const shadow = await readModelFolder(join(path, 'unet_ema'), names);
    ema = new Ema(shadow, {
      decay: cfg.decay ?? 0.9999,
      minDecay: cfg.min_decay ?? 0,
      updateAfterStep: cfg.update_after_step ?? 0,
    });
    ema.optimizationStep = cfg.optimization_step ?? 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const f = await TorchFile.open(join(path, 'optimizer.bin'));
  let adam: AdamState;
  try {
    if (!(f.root instanceof PyDict)) throw new UserError(`${path}/optimizer.bin is not an optimizer state dict`);
    adam = await readAdamState(f, f.root, '', state.param_order, `${path}/optimizer.bin`);
  } finally {
    await f.close();
  }
  return {
    path,
    model,
    ema,
    training: {
      adam,
      schedulerSteps: state.scheduler_steps,
      fwdbwdPassStep: state.fwdbwd_pass_step,
      paramUpdateStep: state.global_step,
      history: state.history,
    },
  };
}
