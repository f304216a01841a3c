#!/usr/bin/env bash
# From a fresh clone: install everything from the project's own files, type-check, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's chromium for the web UI's browser test (src/server/web-ui.test.ts); CI runs as root on Debian.
# Debian's python3-torch (torch 1.13, CPU): tests check that our checkpoints load with torch.load.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
/usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch)
# Debian's redis-server: the queue tests (src/queue) start their own on 127.0.0.1.
[ -x /usr/bin/redis-server ] || need+=(redis-server)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi
npm ci --no-audit --no-fund
npm run typecheck
# The browser UI: type-check web/ and bundle it into web/dist (served by facelift serve).
npm run build:web
npm test
