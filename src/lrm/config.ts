/**
 * GS-LRM model configuration, in the layout of the official `configs/gslrm.yaml` (spec gslrm.md §1): the `model:`
 * section with `image_tokenizer`, `transformer`, `gaussians` and the behaviour flags. The official key names are
 * kept so that an official config file loads unchanged; the `training`/`inference` sections are not read here.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { UserError, fsReason } from '../util/errors.ts';

export interface GslrmConfig {
  image_tokenizer: { image_size: number; patch_size: number; in_channels: number };
  transformer: { d: number; d_head: number; n_layer: number };
  gaussians: { n_gaussians: number; sh_degree: number; upsampler: { upsample_factor: number } };
  add_refsrc_marker: boolean;
  hard_pixelalign: boolean;
  use_custom_plucker: boolean;
  /** Read but without effect: the official clamp is guarded by `not config.inference`, which is never true (§4.3). */
  clip_xyz: boolean;
}

/** The released FaceLift reconstructor (stage III / inference), 303,565,824 parameters. */
export const OFFICIAL_GSLRM_CONFIG: GslrmConfig = Object.freeze({
  image_tokenizer: { image_size: 512, patch_size: 8, in_channels: 9 },
  transformer: { d: 1024, d_head: 64, n_layer: 24 },
  gaussians: { n_gaussians: 2, sh_degree: 0, upsampler: { upsample_factor: 1 } },
  add_refsrc_marker: false,
  hard_pixelalign: true,
  use_custom_plucker: true,
  clip_xyz: true,
});

/** Derived sizes used throughout the model. */
export interface GslrmDims {
  imageSize: number;
  patch: number;
  d: number;
  heads: number;
  dHead: number;
  nLayer: number;
  nGlobal: number;
  /** Raw parameters per Gaussian: xyz 3 | SH 3·(sh+1)² | scale 3 | rotation 4 | opacity 1 (= 14 at SH 0). */
  gaussianDim: number;
  /** Tokens per view: (image_size / patch)². */
  tokensPerView: number;
  /** Input features per token: patch² · in_channels (= 576). */
  patchDim: number;
}

export function gslrmDims(cfg: GslrmConfig): GslrmDims {
  const { image_size, patch_size, in_channels } = cfg.image_tokenizer;
  const { d, d_head, n_layer } = cfg.transformer;
  const sh = cfg.gaussians.sh_degree;
  return {
    imageSize: image_size,
    patch: patch_size,
    d,
    heads: d / d_head,
    dHead: d_head,
    nLayer: n_layer,
    nGlobal: cfg.gaussians.n_gaussians,
    gaussianDim: 3 + 3 * (sh + 1) ** 2 + 3 + 4 + 1,
    tokensPerView: (image_size / patch_size) ** 2,
    patchDim: patch_size * patch_size * in_channels,
  };
}

/**
 * Reads a config from YAML text. Accepts either a whole official config (with a `model:` section) or just the
 * model section. `source` names the file in error messages.
 */
export function parseGslrmConfig(text: string, source = 'config'): GslrmConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UserError(`${source}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  const root = asObject(doc, source, '(top level)');
  const model = 'model' in root ? asObject(root.model, source, 'model') : root;
  const at = (path: string) => `${'model' in root ? 'model.' : ''}${path}`;

  if (model.class_name !== undefined && model.class_name !== 'gslrm.model.gslrm.GSLRM') {
    throw new UserError(`${source}: ${at('class_name')} is ${JSON.stringify(model.class_name)}, but only gslrm.model.gslrm.GSLRM is supported`);
  }
  const tok = asObject(model.image_tokenizer, source, at('image_tokenizer'));
  const tr = asObject(model.transformer, source, at('transformer'));
  const gs = asObject(model.gaussians, source, at('gaussians'));
  const up = gs.upsampler === undefined ? {} : asObject(gs.upsampler, source, at('gaussians.upsampler'));

  const cfg: GslrmConfig = {
    image_tokenizer: {
      image_size: posInt(tok.image_size, source, at('image_tokenizer.image_size')),
      patch_size: posInt(tok.patch_size, source, at('image_tokenizer.patch_size')),
      in_channels: posInt(tok.in_channels, source, at('image_tokenizer.in_channels')),
    },
    transformer: {
      d: posInt(tr.d, source, at('transformer.d')),
      d_head: posInt(tr.d_head, source, at('transformer.d_head')),
      n_layer: posInt(tr.n_layer, source, at('transformer.n_layer')),
    },
    gaussians: {
      n_gaussians: nonNegInt(gs.n_gaussians, source, at('gaussians.n_gaussians')),
      sh_degree: nonNegInt(gs.sh_degree ?? 0, source, at('gaussians.sh_degree')),
      upsampler: { upsample_factor: posInt(up.upsample_factor ?? 1, source, at('gaussians.upsampler.upsample_factor')) },
    },
    add_refsrc_marker: bool(model.add_refsrc_marker ?? false, source, at('add_refsrc_marker')),
    hard_pixelalign: bool(model.hard_pixelalign ?? false, source, at('hard_pixelalign')),
    use_custom_plucker: bool(model.use_custom_plucker ?? false, source, at('use_custom_plucker')),
    clip_xyz: bool(model.clip_xyz ?? false, source, at('clip_xyz')),
  };
  validateGslrmConfig(cfg, source);
  return cfg;
}

export function loadGslrmConfig(path: string): GslrmConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read config ${path}: ${fsReason(e)}`);
  }
  return parseGslrmConfig(text, path);
}

/** Rejects configurations this port does not implement (the official code has branches for them that FaceLift never uses). */
export function validateGslrmConfig(cfg: GslrmConfig, source = 'config'): void {
  const { image_size, patch_size, in_channels } = cfg.image_tokenizer;
  const { d, d_head } = cfg.transformer;
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  if (image_size % patch_size !== 0) fail(`image_tokenizer.image_size ${image_size} is not a multiple of patch_size ${patch_size}`);
  if (in_channels !== 9) fail(`image_tokenizer.in_channels is ${in_channels}; only the 9-channel input (rgb, ray direction, closest point) is implemented`);
  if (d % d_head !== 0) fail(`transformer.d ${d} is not a multiple of d_head ${d_head}`);
  if (cfg.gaussians.sh_degree !== 0) fail(`gaussians.sh_degree is ${cfg.gaussians.sh_degree}; only 0 is implemented (as in FaceLift)`);
  if (cfg.gaussians.upsampler.upsample_factor !== 1) fail(`gaussians.upsampler.upsample_factor is ${cfg.gaussians.upsampler.upsample_factor}; only 1 is implemented (as in the official code)`);
  if (cfg.add_refsrc_marker) fail('add_refsrc_marker: true is not implemented (FaceLift disables it)');
  if (!cfg.hard_pixelalign || !cfg.use_custom_plucker) fail('only hard_pixelalign: true with use_custom_plucker: true is implemented (the FaceLift setting)');
}

type Obj = Record<string, unknown>;

function asObject(v: unknown, source: string, path: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new UserError(`${source}: ${path} ${v === undefined ? 'is missing' : 'must be a mapping'} (see configs/gslrm.yaml for the layout)`);
  }
  return v as Obj;
}

function posInt(v: unknown, source: string, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new UserError(`${source}: ${path} must be a positive integer, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
  }
  return v;
}

function nonNegInt(v: unknown, source: string, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new UserError(`${source}: ${path} must be a non-negative integer, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
  }
  return v;
}

function bool(v: unknown, source: string, path: string): boolean {
  if (typeof v !== 'boolean') throw new UserError(`${source}: ${path} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
