import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, fsReason } from '../util/errors.ts';

/**
 * diffusers pipeline folders (`save_pretrained` output): `model_index.json` names each component's
 * [library, class]; each component folder holds a config and (for models) weights.
 */
export interface PipelineComponent {
  name: string;
  library: string | null;
  className: string | null;
  dir: string;
  /** config.json (models), scheduler_config.json / preprocessor_config.json / tokenizer_config.json otherwise. */
  configFile: string | null;
  config: Record<string, unknown> | null;
  /** The weight file or shard index, null for components without weights (schedulers, tokenizers). */
  weightsFile: string | null;
}

export interface DiffusersPipeline {
  dir: string;
  className: string | null;
  modelIndex: Record<string, unknown>;
  components: Map<string, PipelineComponent>;
}

const CONFIG_FILES = ['config.json', 'scheduler_config.json', 'preprocessor_config.json', 'tokenizer_config.json'];

/** Weight file names in the order diffusers/transformers prefer them (safetensors before pickles). */
export function weightFileCandidates(variant?: string): string[] {
  const v = (base: string, ext: string) => (variant ? `${base}.${variant}.${ext}` : `${base}.${ext}`);
  const out: string[] = [];
  for (const base of ['diffusion_pytorch_model', 'model']) {
    out.push(v(base, 'safetensors'), `${v(base, 'safetensors')}.index.json`);
  }
  for (const base of ['diffusion_pytorch_model', 'pytorch_model']) {
    out.push(v(base, 'bin'), `${v(base, 'bin')}.index.json`);
  }
  return out;
}

export function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${path}: ${fsReason(err)}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The weight file of a component folder, or null when it has none. */
export function findWeightsFile(dir: string, variant?: string): string | null {
  for (const name of weightFileCandidates(variant)) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

export function isDiffusersPipeline(dir: string): boolean {
  return existsSync(join(dir, 'model_index.json'));
}

/** A component folder: its config and weights file (no tensors are read). */
export function readComponent(dir: string, name = '', library: string | null = null, className: string | null = null, variant?: string): PipelineComponent {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`component folder ${dir} does not exist`);
  const configName = CONFIG_FILES.find((f) => existsSync(join(dir, f))) ?? null;
  const configFile = configName ? join(dir, configName) : null;
  return {
    name, library, className, dir, configFile,
    config: configFile ? readJson(configFile) : null,
    weightsFile: findWeightsFile(dir, variant),
  };
}

export function readPipeline(dir: string, variant?: string): DiffusersPipeline {
  const indexPath = join(dir, 'model_index.json');
  if (!existsSync(indexPath)) throw new UserError(`${dir} is not a diffusers pipeline folder (no model_index.json)`);
  const modelIndex = readJson(indexPath);
  const components = new Map<string, PipelineComponent>();
  for (const [name, spec] of Object.entries(modelIndex)) {
    if (name.startsWith('_') || !Array.isArray(spec) || spec.length !== 2) continue;
    const [library, className] = spec as [unknown, unknown];
    if (library === null && className === null) continue; // optional component saved as None
    const cdir = join(dir, name);
    if (!existsSync(cdir)) {
      throw new UserError(`${dir}: model_index.json lists component "${name}" but the folder ${name}/ is missing (incomplete download?)`);
    }
    components.set(name, readComponent(cdir, name, typeof library === 'string' ? library : null,
      typeof className === 'string' ? className : null, variant));
  }
  return { dir, className: typeof modelIndex._class_name === 'string' ? modelIndex._class_name : null, modelIndex, components };
}
