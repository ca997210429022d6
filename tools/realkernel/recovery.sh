#!/usr/bin/env bash
# Runs the HugeFault.Recovery demo on a real kernel under qemu, one boot per case, and prints its report.
#   tools/realkernel/recovery.sh [--kernel SERIES] [--timeout S] [--record] [--out DIR] CASE...
# Cases (the demo's arguments, pool and guest memory):
#   2m            2 MiB pages, MADV_HWPOISON from a thread of the store while workers run (the README's demo)
#   2m-corrupt-pfn  the same error through debugfs hwpoison/corrupt-pfn: early kill (BUS_MCEERR_AO) starts the agent
#   2m-bench      seven 2 MiB pages poisoned one after another, no allocating thread: recovery time samples,
#                 each followed by plain copies of the same size under the same load
#   2m-nothp      2 MiB with shmem THP off (4 KiB tmpfs pages in the replacement)
#   2m-shared     a second process maps the memfd: the agent must refuse, nothing silently lost
#   1g            one 1 GiB page (6 GiB guest; tens of seconds of TCG per pass over the gigabyte)
#   1g-bench      the same without the allocating thread (the timing sample)
#   refusal       Protect must refuse and change nothing (run it with --kernel 6.1)
# Needs what setup.sh installs; runs setup.sh and build-initramfs.sh itself. Results: --out DIR (default
# .cache/realkernel/recovery-runs), or with --record tools/realkernel/recovery-results/ (committed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-$repo/.cache/realkernel}
timeout_s=
out=$CACHE/recovery-runs
kernel=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel=(--kernel "$2"); shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --record) out=$here/recovery-results; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: recovery.sh [--kernel SERIES] [--timeout S] [--record] [--out DIR] 2m|2m-corrupt-pfn|2m-bench|2m-nothp|2m-shared|1g|1g-bench|refusal..." >&2; exit 64; }

pool2m="default_hugepagesz=2M hugepagesz=1G hugepages=0 hugepagesz=2M hugepages=8"
pool1g="default_hugepagesz=2M hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=0"
case_of() { # KEY -> "ARGS|BOOTARGS|MEM|TIMEOUT"
  case "$1" in
    2m) echo "--page,2M,--inject,madvise,--shmem-thp,advise|$pool2m|4G|300" ;;
    2m-corrupt-pfn) echo "--page,2M,--inject,corrupt-pfn,--shmem-thp,advise|$pool2m|4G|300" ;;
    2m-bench) echo "--page,2M,--pages,8,--inject,madvise,--shmem-thp,advise,--repeat,7,--bench-reps,7,--no-allocator|${pool2m/hugepages=8/hugepages=16}|4G|400" ;;
    2m-nothp) echo "--page,2M,--inject,madvise,--shmem-thp,never|$pool2m|4G|300" ;;
    2m-shared) echo "--page,2M,--inject,corrupt-pfn,--shmem-thp,advise,--sharer|$pool2m|4G|300" ;;
    1g) echo "--page,1G,--inject,madvise,--shmem-thp,advise,--offset,0x12345000,--threads,2,--bench-reps,1,--run-ms,3000|$pool1g|6G|1500" ;;
    1g-bench) echo "--page,1G,--inject,madvise,--shmem-thp,advise,--offset,0x12345000,--threads,2,--bench-reps,1,--run-ms,3000,--no-allocator|$pool1g|6G|1500" ;;
    refusal) echo "--page,2M,--expect-refusal|$pool2m|4G|300" ;;
    *) return 1 ;;
  esac
}
for c in "$@"; do case_of "$c" >/dev/null || { echo "recovery.sh: unknown case '$c'" >&2; exit 64; }; done

bash "$here/setup.sh" >/dev/null
bash "$here/build-initramfs.sh" >/dev/null
mkdir -p "$CACHE/recovery" "$out"
rc=0
for c in "$@"; do
  IFS='|' read -r args bootargs mem t <<<"$(case_of "$c")"
  echo "$args,--key,$c" > "$CACHE/recovery/$c.args"
  echo "$bootargs" > "$CACHE/recovery/$c.bootargs"
  echo "$mem" > "$CACHE/recovery/$c.mem"
  bash "$here/run.sh" "${kernel[@]}" --timeout "${timeout_s:-$t}" --out "$out" "recovery:$c" || true
  # run.sh writes DIR/KEY.* (or DIR/SERIES/KEY.* for an entry with @SERIES)
  log=$( { ls -t "$out/$c.console.log" "$out"/*/"$c.console.log" 2>/dev/null || true; } | head -1)
  [ -n "$log" ] || { echo "$c: no console log in $out"; rc=1; continue; }
  jl=${log%.console.log}.jsonl
  echo "== $c on Linux $(grep -o '"kernel":"[^"]*"' "$jl" | head -1 | cut -d'"' -f4) =="
  sed -n 's/^recovery-demo: //p' "$log"
  demo_rc=$(sed -n 's/.*"runner_rc":\([0-9]*\).*/\1/p' "$jl" | tail -1)
  [ "${demo_rc:-1}" = 0 ] || { echo "$c: the demo exited ${demo_rc:-without finishing} (see $log)"; rc=1; }
done
exit $rc
