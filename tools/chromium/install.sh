#!/usr/bin/env bash
# Installs Debian's chromium (headless browser for the HTML report test) and the DejaVu fonts the plots use.
# Idempotent: does nothing when both are present. Prints the chromium path on success.
set -euo pipefail
have() { command -v chromium >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; }
if ! have; then
  if [ "$(id -u)" -ne 0 ]; then echo "chromium missing and not root: cannot apt-get install it" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
have || { echo "chromium still missing after apt-get install" >&2; exit 1; }
command -v chromium
