#!/usr/bin/env bash
# End-to-end tests in headless Chromium (Debian's /usr/bin/chromium via tools/node_modules/playwright-core).
# Assumes dist/ is built (scripts/build-web --dev). Generates the fixtures, then runs every test file;
# each file starts its own static server on a free port and its own browser, and stops them.
# Extra arguments go to `node --test` (e.g. --test-name-pattern=manifest).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f dist/index.html ] && [ -d dist/pkg ] || { echo "dist/ is not built: run scripts/build-web --dev" >&2; exit 1; }
[ -f dist/demo/bundle.json ] || { echo "dist/demo is missing: scripts/build-web makes it from ../shared/data/nuinsseg-dev" >&2; exit 1; }
python3 tests/e2e/make_fixtures.py > /dev/null
exec node --test --test-concurrency=1 "$@" tests/e2e/
