/**
 * Where `facelift infer` finds its weights. The official layout (Hugging Face `wlyu/OpenFaceLift`, mirrored by
 * the reference into `checkpoints/`): `mvdiffusion/pipeckpts/` (a diffusers folder) and `gslrm/ckpt_*.pt`.
 * The GS-LRM config (`configs/gslrm.yaml` in the reference's git, not on the hub) ships with this repo
 * (src/lrm/configs/gslrm.yaml); a `config.yaml` beside the checkpoint overrides it.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OFFICIAL_REPO, ensureWeights, type SnapshotProgress } from '../io/hf-hub.ts';
import { hubSettings } from '../io/hf-env.ts';
import { UserError } from '../util/errors.ts';

export const SHIPPED_GSLRM_CONFIG = fileURLToPath(new URL('../lrm/configs/gslrm.yaml', import.meta.url));

/** facelift-ts's own small models (models/demo/README.md), in the official layout, shipped with the repository. */
export const DEMO_WEIGHTS = fileURLToPath(new URL('../../models/demo', import.meta.url));

/**
 * Which models to run: 'official' = FaceLift's (local, else downloaded); 'demo' = the shipped small models;
 * 'auto' = FaceLift's when they are here already, else the demo models (nothing multi-GB downloads unasked).
 */
export type ModelChoice = 'auto' | 'official' | 'demo';

/** One line for people running the demo models: what they are and how to get FaceLift's. */
export const DEMO_NOTICE =
  "running facelift-ts's small demo models (trained on procedural heads: rough, blurry results). " +
  "FaceLift's own models: `facelift weights download` (several GB), then run again or pass --model official";

export interface WeightsLayout {
  root: string;
  pipeckpts: string;
  gslrmCheckpoint: string;
  gslrmConfig: string;
  /** 'override': `config.yaml` beside the checkpoint; 'shipped': this repo's copy of the official config. */
  gslrmConfigOrigin: 'override' | 'shipped';
  /** 'demo' when these are the shipped demo models, else 'official' (FaceLift's layout, wherever found). */
  model: 'official' | 'demo';
}

/** facelift's own cache folder: $FACELIFT_CACHE, else $XDG_CACHE_HOME/facelift, else ~/.cache/facelift. */
export function faceliftCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FACELIFT_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'facelift');
}

const CKPT = /^ckpt_\d+\.(pt|safetensors)$/;

/** The files of a weights folder, or a UserError naming what is missing. */
export function locateWeights(dir: string): WeightsLayout {
  const root = resolve(dir);
  const problems: string[] = [];
  const pipeckpts = join(root, 'mvdiffusion/pipeckpts');
  if (!existsSync(join(pipeckpts, 'model_index.json'))) problems.push('mvdiffusion/pipeckpts/model_index.json');
  const gdir = join(root, 'gslrm');
  const ckpts = existsSync(gdir) && statSync(gdir).isDirectory() ? readdirSync(gdir).filter((f) => CKPT.test(f)).sort() : [];
  if (ckpts.length === 0) problems.push('gslrm/ckpt_*.pt');
  if (problems.length) {
    throw new UserError(`${root} is not a FaceLift weights folder: missing ${problems.join(' and ')} ` +
      `(expected the layout of the Hugging Face repo ${OFFICIAL_REPO}; get it with \`facelift weights download --dir ${dir}\`)`);
  }
  const override = join(gdir, 'config.yaml');
  const hasOverride = existsSync(override);
  return {
    root,
    pipeckpts,
    // Several checkpoints: the one with the highest step (names are zero-padded, so the last in sort order).
    gslrmCheckpoint: join(gdir, ckpts[ckpts.length - 1]!),
    gslrmConfig: hasOverride ? override : SHIPPED_GSLRM_CONFIG,
    gslrmConfigOrigin: hasOverride ? 'override' : 'shipped',
    model: root === resolve(DEMO_WEIGHTS) ? 'demo' : 'official',
  };
}

function complete(dir: string): boolean {
  try {
    locateWeights(dir);
    return true;
  } catch {
    return false;
  }
}

export interface ResolveWeightsOptions {
  /** `--weights DIR`: used as is, never downloaded into. */
  dir?: string;
  env?: NodeJS.ProcessEnv;
  /** Where `./checkpoints` is looked for (default: the current directory). */
  cwd?: string;
  onDownload?: (p: SnapshotProgress) => void;
  /** Default 'auto' (see ModelChoice). */
  model?: ModelChoice;
}

function demoWeights(): WeightsLayout {
  if (!complete(DEMO_WEIGHTS)) {
    throw new UserError('the demo models are not in this copy of facelift-ts (models/demo/ is incomplete); ' +
      'restore it from the repository (git checkout -- models/demo), or use FaceLift\'s models with --model official');
  }
  return locateWeights(DEMO_WEIGHTS);
}

/**
 * `--weights DIR` if given; else $FACELIFT_WEIGHTS; else ./checkpoints when it holds a complete set (where
 * `facelift weights download` and the reference put them); else `<facelift cache>/checkpoints`. When none of these
 * holds weights: with model 'auto' the shipped demo models; with 'official' a download from Hugging Face (through
 * the shared HF cache) into the cache folder — offline, or when the download fails, the error says so and how to
 * proceed. Model 'demo' is the demo models, always.
 */
export async function resolveWeights(opts: ResolveWeightsOptions = {}): Promise<WeightsLayout & { downloaded: boolean }> {
  const env = opts.env ?? process.env;
  const model = opts.model ?? 'auto';
  if (model === 'demo') {
    if (opts.dir) throw new UserError('--model demo runs the shipped demo models; leave out --weights (or drop --model demo)');
    return { ...demoWeights(), downloaded: false };
  }
  if (opts.dir) return { ...locateWeights(opts.dir), downloaded: false };
  if (env.FACELIFT_WEIGHTS) return { ...locateWeights(env.FACELIFT_WEIGHTS), downloaded: false };
  const local = join(opts.cwd ?? process.cwd(), 'checkpoints');
  if (complete(local)) return { ...locateWeights(local), downloaded: false };
  const dir = join(faceliftCacheDir(env), 'checkpoints');
  if (complete(dir)) return { ...locateWeights(dir), downloaded: false };
  if (model === 'auto') return { ...demoWeights(), downloaded: false };
  const offline = hubSettings(env).offline;
  try {
    await ensureWeights({
      dir, allowPatterns: ['mvdiffusion/*', 'gslrm/*'],
      ...(opts.onDownload ? { onProgress: opts.onDownload } : {}),
    });
  } catch (e) {
    // Offline, the hub's own message only repeats that; say where we looked instead.
    const why = offline
      ? `offline mode is on (HF_HUB_OFFLINE), and they are not in ./checkpoints, $FACELIFT_WEIGHTS or ${dir}`
      : `could not be downloaded: ${String((e as Error).message ?? e).split('\n')[0]}`;
    throw new UserError(
      `the FaceLift weights (several GB, ${OFFICIAL_REPO} on Hugging Face) are not here and ${why}. ` +
      `Download them where there is network (\`facelift weights download --dir DIR\`) and pass --weights DIR, or copy them into ${dir}`,
      { cause: e },
    );
  }
  return { ...locateWeights(dir), downloaded: true };
}
