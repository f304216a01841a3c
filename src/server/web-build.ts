/**
 * The browser UI is TypeScript under web/, bundled by vite into web/dist (not committed). `npm run build:web`
 * builds it; `facelift serve` and the UI tests build it themselves when it is missing or older than its sources,
 * so a fresh clone works after `npm ci` with no network.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
export const WEB_DIR = join(ROOT, 'web');
const VITE = join(ROOT, 'node_modules/vite/bin/vite.js');

function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return readdirSync(path).reduce((t, name) => Math.max(t, newest(join(path, name))), 0);
}

/** Modules outside web/ that the page bundles. */
const SHARED_SOURCES = ['src/pipeline/estimate.ts'];

/** Whether web/dist is missing or older than web/src, web/index.html, web/vite.config.ts or a shared module. */
export function webBuildStale(): boolean {
  const index = join(WEB_DIR, 'dist/index.html');
  if (!existsSync(index)) return true;
  const sources = Math.max(
    ...['src', 'index.html', 'vite.config.ts'].map((p) => newest(join(WEB_DIR, p))),
    ...SHARED_SOURCES.map((p) => newest(join(ROOT, p))),
  );
  return statSync(index).mtimeMs < sources;
}

/**
 * Builds web/dist when stale. Returns false (and builds nothing) when vite is not installed, e.g. after
 * `npm ci --omit=dev`; throws with vite's output when the build fails.
 */
export function ensureWebBuilt(): boolean {
  if (!webBuildStale()) return true;
  if (!existsSync(VITE)) return false;
  const r = spawnSync(process.execPath, [VITE, 'build', WEB_DIR], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the web UI failed:\n${r.stderr}${r.stdout}`);
  return true;
}
