#!/usr/bin/env bash
# End-to-end check of docs/slurm-array.sh on a single-node Slurm on localhost: installs slurm-wlm + munge
# (tools/slurm/install.sh), starts munged, slurmctld and slurmd with a private config, submits a 3-task array of
# the shipped script, reruns one task (it must be skipped: same study, same shard), merges, compares byte for
# byte with an unsharded run, and stops the daemons it started, by PID.
# Exit 0: passed; 77: skipped (the reason is the last line); anything else: failed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
skip() { echo "tools/slurm/test.sh: SKIPPED: $*"; exit 77; }
bash "$repo/tools/slurm/install.sh" || skip "slurm-wlm/munge could not be installed (tools/slurm/install.sh failed)"
work="$(mktemp -d /tmp/hugefault-slurm.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
}
trap cleanup EXIT

echo "tools/slurm/test.sh: publishing the CLI"
dotnet publish "$repo/src/HugeFault.Cli" -c Release -o "$work/bin" -v q >"$work/publish.log" 2>&1 || { tail -5 "$work/publish.log"; exit 1; }
bin="$work/bin/HugeFault.Cli"

# munge: the key the package created; our own socket and pid file, run as the munge user.
[ -f /etc/munge/munge.key ] || skip "no /etc/munge/munge.key (munge package incomplete)"
mkdir -p "$work/munge" && chown munge: "$work/munge"
sock="$work/munge/munge.socket"
runuser -u munge -- /usr/sbin/munged --socket="$sock" --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed" \
  || skip "munged would not start ($(tail -1 "$work/munge/munged.log" 2>/dev/null))"
pids+=("$(cat "$work/munge/munged.pid")")

host="$(hostname -s)"
cpus="$(nproc)"
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
mkdir -p "$work/state" "$work/spool" "$work/results"
cat >"$work/slurm.conf" <<CONF
ClusterName=hugefault
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
/usr/sbin/slurmctld -D -i -f "$SLURM_CONF" >"$work/slurmctld.out" 2>&1 & pids+=("$!")
/usr/sbin/slurmd -D -f "$SLURM_CONF" >"$work/slurmd.out" 2>&1 & pids+=("$!")
for _ in $(seq 60); do
  state="$(sinfo -h -o %T 2>/dev/null | head -1 || true)"
  [ "$state" = idle ] && break
  sleep 1
done
[ "${state:-}" = idle ] || skip "single-node Slurm did not come up (node state '${state:-none}'; $(tail -1 "$work/slurmctld.log" 2>/dev/null))"
echo "tools/slurm/test.sh: slurm $(sinfo --version) up on $host ($cpus CPUs)"

study=(--servers 3000 --seed 3 --policy mainline,hgm,keep-mapped)
submit() { sbatch --wait --chdir="$repo" --cpus-per-task=1 --output="$work/task-%A_%a.log" \
  --export=ALL,HUGEFAULT="$bin",HUGEFAULT_SHARDS=3,HUGEFAULT_RESULTS="$work/results" "$@" "$repo/docs/slurm-array.sh" "${study[@]}"; }
submit --array=0-2 >"$work/sbatch.out"
ls "$work/results"
[ "$(ls "$work/results" | wc -l)" = 3 ] || { echo "tools/slurm/test.sh: expected 3 shard files"; cat "$work"/task-*.log; exit 1; }
submit --array=1 >>"$work/sbatch.out"
grep -h "already holds shard 1/3" "$work"/task-*.log || { echo "tools/slurm/test.sh: the rerun of task 1 was not skipped"; cat "$work"/task-*.log; exit 1; }

"$bin" fleet merge "$work"/results/fleet-*.json --json >"$work/merged.json"
"$bin" fleet "$repo/docs/fleet.yaml" "${study[@]}" --json >"$work/whole.json" 2>/dev/null
if cmp -s "$work/merged.json" "$work/whole.json"; then
  echo "tools/slurm/test.sh: PASSED: 3 array tasks merged byte-identical to the unsharded run ($(wc -c <"$work/whole.json") bytes, study $(sed -n 's/^ *"id": "\([0-9a-f]*\)".*/\1/p' "$work/whole.json" | head -1))"
else
  diff "$work/merged.json" "$work/whole.json" | head -20; echo "tools/slurm/test.sh: FAILED: merged != unsharded"; exit 1
fi
