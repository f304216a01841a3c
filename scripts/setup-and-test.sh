#!/usr/bin/env bash
# From a fresh clone: install everything from the project's own files, type-check, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run typecheck
npm test
