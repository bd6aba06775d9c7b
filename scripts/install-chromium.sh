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

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: the browser test needs Chromium, and this is not a Debian-like system (no apt-get): install Chromium yourself and set SERVEBENCH_CHROMIUM to its path" >&2
  exit 2
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-chromium: the browser test needs Chromium: run as root, or install it: apt-get install chromium" >&2
    exit 2
  fi
fi
echo "install-chromium: installing Debian's chromium for the report's browser test (~300 MB)" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >&2
if ! "$CHROMIUM" --version >/dev/null 2>&1; then
  echo "install-chromium: chromium is still not runnable after the install; see the apt-get output above" >&2
  exit 2
fi
