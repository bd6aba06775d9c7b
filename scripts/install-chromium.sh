#!/usr/bin/env bash
# A headless browser for the report's browser test (tests/it/browser.rs): Debian's Chromium.
# Does nothing when `chromium` (or $SERVEBENCH_CHROMIUM) already runs; else installs Debian's
# chromium package with apt-get (as root, or through sudo). Idempotent: `make test` runs it
# every time.
set -euo pipefail

CHROMIUM=${SERVEBENCH_CHROMIUM:-chromium}
if command -v "$CHROMIUM" >/dev/null 2>&1 && "$CHROMIUM" --version >/dev/null 2>&1; then
  exit 0
fi

"$(dirname "$0")/apt-install.sh" install-chromium "the report's browser test needs Chromium (~300 MB; or set SERVEBENCH_CHROMIUM to one)" chromium
if ! "$CHROMIUM" --version >/dev/null 2>&1; then
  echo "install-chromium: chromium is still not runnable after the install; see the apt-get output above" >&2
  exit 2
fi
