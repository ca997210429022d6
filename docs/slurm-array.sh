#!/usr/bin/env bash
# A fleet study as a Slurm job array: one task per shard. hugefault reads SLURM_ARRAY_TASK_ID (minus
# SLURM_ARRAY_TASK_MIN) and SLURM_ARRAY_TASK_COUNT to pick its shard, so no --shard flag is needed.
#   sbatch docs/slurm-array.sh
#   # when all tasks are done:
#   hugefault fleet merge results/shard-*.json           # table; add --json/--csv/--plot DIR as needed
# Seeds are derived from (seed, server index): any array size gives exactly the same merged totals.
#SBATCH --job-name=hugefault-fleet
#SBATCH --array=0-31
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --time=00:30:00
#SBATCH --output=results/slurm-%A_%a.log

set -euo pipefail
mkdir -p results
hugefault fleet fleet.yaml --servers 100000000 --years 5 --seed 3 --threads "${SLURM_CPUS_PER_TASK:-2}" --json \
  > "results/shard-${SLURM_ARRAY_TASK_ID}.json"
