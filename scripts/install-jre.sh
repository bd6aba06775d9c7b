#!/usr/bin/env bash
# A Java runtime for the Spark test (tests/it/spark.rs; pyspark 4 needs Java 17 or later).
# Does nothing when `java` is already 17+; else installs Debian's headless JRE with apt-get
# (as root, or through sudo). Idempotent: `make test` runs it every time.
set -euo pipefail

java_major() { # the major version of `java` on PATH, or 0
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n1) || true
  echo "${v:-0}"
}

if command -v java >/dev/null 2>&1 && [ "$(java_major)" -ge 17 ]; then
  exit 0
fi

# default-jre-headless is OpenJDK 17 on Debian 12 and 21 on Debian 13; both run Spark 4.
"$(dirname "$0")/apt-install.sh" install-jre "the Spark test needs Java 17 or later on PATH" default-jre-headless
if [ "$(java_major)" -lt 17 ]; then
  echo "install-jre: java is still older than 17 after the install ($(java -version 2>&1 | head -n1)); choose a newer one with update-alternatives --config java" >&2
  exit 2
fi
