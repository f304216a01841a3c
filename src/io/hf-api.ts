import { UserError } from '../util/errors.ts';
import type { HubSettings } from './hf-env.ts';

/** One file of a repo at a commit, as the hub's tree API describes it. */
export interface RepoFile {
  path: string;
  size: number;
  /** git blob sha1 (what the hub's ETag is for non-LFS files). */
  oid: string;
  /** LFS files: sha256 of the content (the hub's ETag for them). */
  lfs?: { sha256: string; size: number };
}

export type FetchFn = typeof fetch;

/** The hub answered with an HTTP error status. */
export class HubHttpError extends UserError {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'HubHttpError';
  }
}

export interface HubClient {
  settings: HubSettings;
  fetch: FetchFn;
}

export function authHeaders(settings: HubSettings): Record<string, string> {
  return settings.token ? { authorization: `Bearer ${settings.token}` } : {};
}

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

export async function hubRequest(client: HubClient, url: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await client.fetch(url, { ...init, headers: { ...authHeaders(client.settings), ...(init.headers as Record<string, string> | undefined) } });
  } catch (err) {
    throw new UserError(`cannot reach the Hugging Face hub at ${client.settings.endpoint} (${(err as Error).cause ?? (err as Error).message}); ` +
      'check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use cached files', { cause: err });
  }
  if (res.ok || res.status === 206) return res;
  const body = await res.text().catch(() => '');
  const hint = res.status === 401 || res.status === 403
    ? (client.settings.token ? ' (HF_TOKEN was sent but refused)' : ' (the repo may be gated or private: set HF_TOKEN)')
    : res.status === 404 ? ' (wrong repo id, revision or path?)' : '';
  throw new HubHttpError(`hub request ${url} failed: HTTP ${res.status}${hint}${body ? `: ${body.slice(0, 200)}` : ''}`, res.status);
}

/** The commit hash a revision (branch, tag or hash) points to. */
export async function resolveRevision(client: HubClient, repo: string, revision: string): Promise<string> {
  const url = `${client.settings.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const info = (await (await hubRequest(client, url)).json()) as { sha?: unknown };
  if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha)) throw new UserError(`hub answered ${url} without a commit sha`);
  return info.sha;
}

interface TreeEntry {
  type: string;
  path: string;
  size: number;
  oid: string;
  lfs?: { oid: string; size: number };
}

/** Every file of the repo at `commit` (recursive tree listing, following `Link: rel="next"` pages). */
export async function listRepoFiles(client: HubClient, repo: string, commit: string): Promise<RepoFile[]> {
  const files: RepoFile[] = [];
  let url: string | null = `${client.settings.endpoint}/api/models/${repo}/tree/${commit}?recursive=true`;
  while (url) {
    const res = await hubRequest(client, url);
    const page = (await res.json()) as TreeEntry[];
    if (!Array.isArray(page)) throw new UserError(`hub answered ${url} with something that is not a file list`);
    for (const e of page) {
      if (e.type !== 'file') continue;
      files.push({ path: e.path, size: e.size, oid: e.oid, ...(e.lfs ? { lfs: { sha256: e.lfs.oid, size: e.lfs.size } } : {}) });
    }
    const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '');
    url = next ? new URL(next[1]!, url).toString() : null;
  }
  return files;
}

export function resolveUrl(settings: HubSettings, repo: string, commit: string, path: string): string {
  return `${settings.endpoint}/${repo}/resolve/${commit}/${encodePath(path)}`;
}
