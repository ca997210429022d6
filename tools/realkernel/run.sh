#!/usr/bin/env bash
# Boots a Debian kernel under qemu (TCG) once per probe and saves each probe's JSON lines.
#   tools/realkernel/run.sh [--kernel SERIES] [--timeout SECONDS] [--out DIR] all | PROBE... | scenario:KEY...
# scenario:KEY boots with $CACHE/scenarios/KEY.bootargs and runs the plan KEY.json (see build-initramfs.sh).
# The kernel is $CACHE/kernels/SERIES (setup.sh; SERIES 6.12 or 6.1): --kernel picks it for the whole run
# (default 6.12, or $KERNEL), and an entry written PROBE@SERIES or scenario:KEY@SERIES picks it for that
# boot alone; such an entry's files go to DIR/SERIES/ so one run can boot the same scenario on every kernel.
# One boot per probe: poison cannot be undone within a boot. Needs setup.sh and build-initramfs.sh.
# Per probe it writes DIR/PROBE.jsonl (the runner's lines, then "console" lines for any other
# serial output inside the probe, e.g. a panic, then a "timing" line) and DIR/PROBE.console.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-$repo/.cache/realkernel}
timeout_s=300
out=$here/results
kernel=${KERNEL:-6.12}
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: run.sh [--kernel SERIES] [--timeout S] [--out DIR] all | PROBE[@SERIES]... | scenario:KEY[@SERIES]..." >&2; exit 64; }
runner=$CACHE/runner/HugeFault.RealRunner
[ -x "$runner" ] && [ -s "$CACHE/initramfs.cpio.gz" ] || { echo "run.sh: run build-initramfs.sh first" >&2; exit 1; }
probes=("$@")
if [ "${probes[0]}" = all ]; then
  mapfile -t probes < <("$runner" list | awk '$1 != "selftest" {print $1}')
fi
mkdir -p "$out"
kdir() { # the folder holding SERIES's vmlinuz and kernel-version (a pre-kernels/ cache holds 6.12 at the top)
  if [ -s "$CACHE/kernels/$1/vmlinuz" ]; then echo "$CACHE/kernels/$1"
  elif [ "$1" = 6.12 ] && [ -s "$CACHE/vmlinuz" ]; then echo "$CACHE"
  else echo "run.sh: no kernel $1 in $CACHE/kernels (run KERNELS=$1 tools/realkernel/setup.sh)" >&2; return 1; fi
}
kdir "$kernel" >/dev/null || exit 1

json_str() { # escape a line for a JSON string
  printf '%s' "$1" | tr -d '\r' | tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

fail=0
for entry in "${probes[@]}"; do
  series=$kernel; pout=$out
  case "$entry" in *@*) series=${entry##*@}; entry=${entry%@*}; pout=$out/$series; mkdir -p "$pout" ;; esac
  kd=$(kdir "$series") || { fail=1; continue; }
  kver=$(cat "$kd/kernel-version")
  case "$entry" in
    recovery:*) # written by recovery.sh: the demo's arguments, pool sizes, guest memory
      p=${entry#recovery:}
      bootargs="$(cat "$CACHE/recovery/$p.bootargs") hfrecovery=$(cat "$CACHE/recovery/$p.args")"
      mem=$(cat "$CACHE/recovery/$p.mem") ;;
    scenario:*)
      p=${entry#scenario:}
      bootargs="$(cat "$CACHE/scenarios/$p.bootargs") hfscenario=$p"
      mem=$(cat "$CACHE/scenarios/$p.mem" 2>/dev/null || echo 4G) ;;
    *)
      p=$entry
      mem=4G
      bootargs=$("$runner" bootargs "$p") ;;
  esac
  log=$pout/$p.console.log
  # Multi-threaded TCG occasionally oopses while the kernel patches its own text during boot
  # ("Oops: int3" in an early initcall): a boot that never reaches the probe is retried.
  attempts=0
  while :; do
    attempts=$((attempts + 1))
    t0=$(date +%s.%N)
    set +e
    timeout --foreground -k 5 "$timeout_s" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m "$mem" \
      -display none -monitor none -serial "file:$log" -no-reboot \
      -kernel "$kd/vmlinuz" -initrd "$CACHE/initramfs.cpio.gz" \
      -append "console=ttyS0 loglevel=1 panic=-1 $bootargs hfprobe=$p" </dev/null
    qrc=$?
    set -e
    if grep -q '^@@@ BEGIN ' "$log" || [ "$attempts" -ge 3 ]; then break; fi
    mv "$log" "$log.failed-boot-$attempts"
    echo "$p: boot $attempts did not reach the probe (see $log.failed-boot-$attempts), retrying" >&2
  done
  t1=$(date +%s.%N)
  tr -d '\r' < "$log" > "$log.tmp" && mv "$log.tmp" "$log"
  jl=$pout/$p.jsonl
  # Runner lines between the markers; anything else printed there (kernel panic text) as "console" lines.
  awk '/^@@@ BEGIN /{on=1; next} /^@@@ END /{on=0} on' "$log" | grep '^{' > "$jl" || true
  { awk '/^@@@ BEGIN /{on=1; next} /^@@@ END /{on=0} on' "$log" | grep -v '^{' || true; } | while IFS= read -r line; do
    [ -n "$line" ] || continue
    printf '{"probe":"%s","kernel":"%s","proc":"console","step":"console","text":"%s"}\n' "$p" "$kver" "$(json_str "$line")"
  done >> "$jl"
  init_up=$(sed -n 's/^@@@ INIT uptime=\([0-9.]*\).*/\1/p' "$log" | head -1)
  begin_up=$(sed -n 's/^@@@ BEGIN .* uptime=\([0-9.]*\).*/\1/p' "$log" | head -1)
  end_up=$(sed -n 's/^@@@ END .* uptime=\([0-9.]*\).*/\1/p' "$log" | head -1)
  rc=$(sed -n 's/^@@@ END .* rc=\([0-9]*\).*/\1/p' "$log" | head -1)
  probe_s=$(awk -v a="${begin_up:-0}" -v b="${end_up:-0}" 'BEGIN{ if (b>0) printf "%.2f", b-a; else print "null" }')
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  printf '{"probe":"%s","kernel":"%s","proc":"host","step":"timing","wall_s":%s,"guest_uptime_at_init_s":%s,"guest_probe_s":%s,"runner_rc":%s,"qemu_rc":%s,"boot_attempts":%s}\n' \
    "$p" "$kver" "$wall" "${init_up:-null}" "$probe_s" "${rc:-null}" "$qrc" "$attempts" >> "$jl"
  echo "$p [$kver]: wall ${wall}s, guest init at ${init_up:-?}s, probe ${probe_s}s, runner rc ${rc:-none}, qemu rc $qrc, $(grep -c '' "$jl") lines" >&2
  if [ "$qrc" -eq 124 ]; then fail=1; fi
done
exit $fail
