#!/usr/bin/env bash
# A fleet study as a Slurm job array, one task per shard; works as shipped from a checkout:
#   sbatch docs/slurm-array.sh                      # the study in docs/fleet.yaml, 32 shards
#   sbatch docs/slurm-array.sh --servers 1000000    # arguments replace the config's run section flags
#   hugefault fleet merge results/fleet-*-*of32.json   # refuses duplicates, gaps, overlaps and other studies
# Rerunning a failed task runs exactly its shard (K is SLURM_ARRAY_TASK_ID, N is HUGEFAULT_SHARDS), and a task
# whose shard is already in results/ with the same study id is skipped:
#   sbatch --array=7 docs/slurm-array.sh
# Environment (sbatch --export=ALL,NAME=VALUE): HUGEFAULT (the binary; default 'hugefault' on PATH, else a
# 'dotnet publish' of src/HugeFault.Cli under the submit dir's .cache), HUGEFAULT_CONFIG (default docs/fleet.yaml),
# HUGEFAULT_RESULTS (default results/ in the submit dir), HUGEFAULT_SHARDS (default 32, = --array below).
# The log goes to the submit dir, which exists when slurmd opens it (results/ may not yet).
#SBATCH --job-name=hugefault-fleet
#SBATCH --array=0-31
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --time=00:30:00
#SBATCH --output=hugefault-fleet-%A_%a.log

set -euo pipefail
# Paths are relative to the job's working directory (sbatch --chdir, by default the directory sbatch ran in).
export HUGEFAULT_SHARDS="${HUGEFAULT_SHARDS:-32}"   # must equal the array's size; --shard auto checks it against a full array
config="${HUGEFAULT_CONFIG:-docs/fleet.yaml}"
results="${HUGEFAULT_RESULTS:-results}"
bin="${HUGEFAULT:-}"
if [ -z "$bin" ]; then
  if command -v hugefault >/dev/null; then bin=hugefault
  elif [ -x .cache/publish/HugeFault.Cli ]; then bin=.cache/publish/HugeFault.Cli
  else echo "slurm-array.sh: no hugefault on PATH; set HUGEFAULT=/path/to/HugeFault.Cli (dotnet publish src/HugeFault.Cli -c Release -o .cache/publish)" >&2; exit 2
  fi
fi
[ -f "$config" ] || { echo "slurm-array.sh: config '$config' not found (run from the checkout or set HUGEFAULT_CONFIG)" >&2; exit 2; }
mkdir -p "$results"
exec "$bin" fleet "$config" "$@" --shard auto --threads "${SLURM_CPUS_PER_TASK:-2}" --out "$results/fleet-{study}-{shard}.json"
