/** Debian's chromium for the UI tests: where it is, and the flags that make it work here. */
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why browser tests must skip (no chromium binary), or false when they can run. */
export const chromiumMissing: string | false = existsSync(CHROMIUM)
  ? false
  : `chromium not found at ${CHROMIUM} (install Debian's chromium package — scripts/setup-and-test.sh does — or set CHROMIUM_PATH)`;

/**
 * No sandbox (tests run as root), no background networking (this machine's network is closed), and WebGL through
 * SwiftShader, ANGLE's software renderer, since there is no GPU.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist',
];
