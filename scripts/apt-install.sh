#!/usr/bin/env bash
# Install Debian packages for a test's needs, the one way the project does it: apt-get as root,
# or through sudo; one line naming WHAT needs them when neither works.
#
# usage: scripts/apt-install.sh WHO WHAT PACKAGE...
#   WHO   the caller's name, for messages (install-jre)
#   WHAT  what needs the packages (the Spark test needs Java 17 or later)
set -euo pipefail
WHO=$1 WHAT=$2
shift 2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$WHO: $WHAT, and this is not a Debian-like system (no apt-get): install $* yourself" >&2
  exit 2
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "$WHO: $WHAT: run as root, or install it: apt-get install $*" >&2
    exit 2
  fi
fi
echo "$WHO: installing Debian's $* ($WHAT)" >&2
export DEBIAN_FRONTEND=noninteractive
# slim images drop /usr/share/man, and some packages' postinst (the JRE's) fails without it
"${SUDO[@]}" mkdir -p /usr/share/man/man1
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
