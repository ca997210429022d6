#!/usr/bin/env bash
# Installs Debian's rasdaemon package (rasdaemon, ras-mc-ctl). Idempotent; prints what it did. Used by schema.sh and the
# replay test of the packaged schema; exits non-zero with one line on stderr when the package cannot be installed.
set -euo pipefail
if command -v rasdaemon >/dev/null; then
  echo "tools/rasdaemon/install.sh: rasdaemon $(dpkg-query -W -f='${Version}' rasdaemon 2>/dev/null || echo ?) already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then echo "tools/rasdaemon/install.sh: needs root for apt-get (run as root or install rasdaemon)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "tools/rasdaemon/install.sh: apt-get update failed" >&2; exit 1; }
# The package's postinst tries to start the service; policy-rc.d or a missing init refuses, which is what we want here.
apt-get install -y -qq --no-install-recommends rasdaemon >/dev/null 2>&1 || { echo "tools/rasdaemon/install.sh: apt-get install rasdaemon failed" >&2; exit 1; }
echo "tools/rasdaemon/install.sh: installed rasdaemon $(dpkg-query -W -f='${Version}' rasdaemon)"
