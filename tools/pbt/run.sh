#!/usr/bin/env bash
# The long property mode of issue 12 outside the timed suite: N random operation sequences per recovery policy
# (default 1000000) through PolicyKernelProperties, the policies run as JOBS parallel processes (default 2), each
# niced, each row stopping after SECONDS if given. Reproducible: the master seed is printed and every failure prints
# the seed of its own case (HUGEFAULT_PBT_SEED=... re-runs it alone).
# Usage: tools/pbt/run.sh [N] [MASTER] [JOBS] [SECONDS]; logs and summary.txt go to $HUGEFAULT_PBT_OUT (default /tmp/hf-pbt-long).
set -uo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}" MASTER="${2:-1}" JOBS="${3:-2}" SECONDS_PER_POLICY="${4:-0}"
OUT="${HUGEFAULT_PBT_OUT:-/tmp/hf-pbt-long}"
mkdir -p "$OUT" && rm -f "$OUT"/summary.txt "$OUT"/progress-*.txt "$OUT"/shard-*.log
dotnet build tests/HugeFault.Tests -c Release -v q -nologo >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 2; }
echo "master seed $MASTER, $N sequences per registered policy, $JOBS jobs"
start=$(date +%s)
pids=()
for ((j = 0; j < JOBS; j++)); do
  HUGEFAULT_PBT_LONG="$N" HUGEFAULT_PBT_MASTER="$MASTER" HUGEFAULT_PBT_SHARD="$j/$JOBS" HUGEFAULT_PBT_SECONDS="$SECONDS_PER_POLICY" HUGEFAULT_PBT_OUT="$OUT" \
    nice -n 10 tests/HugeFault.Tests/bin/Release/net10.0/HugeFault.Tests \
    -method "HugeFault.Tests.Properties.PolicyKernelProperties.Random_operation_sequences_keep_every_invariant_under_every_policy" \
    >"$OUT/shard-$j.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
echo "wall time $(( $(date +%s) - start )) s; CPU of all shards (user, system): $(times | tail -n1)"
cat "$OUT/summary.txt" 2>/dev/null
[ "$rc" -eq 0 ] || grep -h -A12 "failed. CsCheck" "$OUT"/shard-*.log | head -60
exit $rc
