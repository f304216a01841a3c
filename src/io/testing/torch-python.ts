/** Test helper: runs a script under Debian's python3 with python3-torch (installed by scripts/setup-and-test.sh). */
import { spawnSync } from 'node:child_process';

/** The system interpreter (Debian's torch lives there), not a pyenv shim earlier on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export function runTorchPython(script: string, args: string[] = []): string {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) {
    throw new Error(
      `python3 with torch failed (install Debian's python3-torch: apt-get install python3-torch): ${r.error?.message ?? r.stderr}`,
    );
  }
  return r.stdout;
}
