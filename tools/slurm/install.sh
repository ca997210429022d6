#!/usr/bin/env bash
# Installs a single-node Slurm (slurmctld + slurmd) and munge from Debian's packages. Idempotent; prints what it did.
# Used by tools/slurm/test.sh; exits non-zero with one line on stderr when the packages cannot be installed.
set -euo pipefail
if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
  echo "tools/slurm/install.sh: slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm 2>/dev/null || echo ?) and munge already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then echo "tools/slurm/install.sh: needs root for apt-get (run as root or install slurm-wlm munge)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "tools/slurm/install.sh: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null || { echo "tools/slurm/install.sh: apt-get install slurm-wlm munge failed" >&2; exit 1; }
echo "tools/slurm/install.sh: installed slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm) and munge $(dpkg-query -W -f='${Version}' munge)"
