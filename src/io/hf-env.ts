import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Hugging Face settings from the environment, read the way huggingface_hub reads them, so that caches and
 * tokens are shared with Python tools.
 */
export interface HubSettings {
  endpoint: string;
  token: string | null;
  cacheDir: string;
  offline: boolean;
}

const truthy = (v: string | undefined) => v !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(v.toUpperCase());

export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const hfHome = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return {
    endpoint: (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''),
    token: env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN ?? null,
    cacheDir: env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE ?? join(hfHome, 'hub'),
    offline: truthy(env.HF_HUB_OFFLINE) || truthy(env.TRANSFORMERS_OFFLINE),
  };
}

/** `models--org--name`, the cache folder of a model repo. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

export function isCommitHash(rev: string): boolean {
  return /^[0-9a-f]{40}$/.test(rev);
}

/** Python-fnmatch-style pattern (`*` also crosses "/", as huggingface_hub's allow_patterns do). */
export function matchesPattern(path: string, pattern: string): boolean {
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(path) || (pattern.endsWith('/') && path.startsWith(pattern));
}

export function filterFiles<T extends { path: string }>(files: T[], allow?: string[], ignore?: string[]): T[] {
  return files.filter((f) =>
    (!allow?.length || allow.some((p) => matchesPattern(f.path, p))) &&
    !(ignore ?? []).some((p) => matchesPattern(f.path, p)));
}
