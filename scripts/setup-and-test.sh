#!/usr/bin/env bash
# From a fresh clone: install everything from the project's own files, type-check, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's chromium for the web UI's browser test (src/server/web-ui.test.ts); CI runs as root on Debian.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
npm ci --no-audit --no-fund
npm run typecheck
# The browser UI: type-check web/ and bundle it into web/dist (served by facelift serve).
npm run build:web
npm test
