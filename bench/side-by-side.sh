#!/usr/bin/env bash
# The issue-10 table, measured on two checkouts in one run (this machine is shared and noisy: only numbers taken
# side by side compare). For each checkout, in turn: BenchmarkDotNet's PolicyBench cells (memory_failure() on a 1 GiB
# folio: mainline, hgm, hgm-full-split, vma-convert at 64 mappers; hgm at 1,024), then the CLI's `run scenarios/`
# and `compare` (wall time of three runs each, alternating between the checkouts).
#   bench/side-by-side.sh BEFORE AFTER [OUT]
# Each checkout must have bench/HugeFault.Bench (copy this one into an older checkout) and a built CLI; the CLI is
# run as AFTER/hugefault and BEFORE/hugefault (each checkout's own wrapper, so each its own start-up settings).
set -euo pipefail
before="$1"; after="$2"; out="${3:-/tmp/side-by-side}"
mkdir -p "$out"
bench() { # DIR NAME POLICIES MAPPERS
  (cd "$1" && HUGEFAULT_BENCH_POLICIES="$3" HUGEFAULT_BENCH_MAPPERS="$4" dotnet run -c Release --project bench/HugeFault.Bench -- \
     --filter '*PolicyBench*' --artifacts "$out/bdn-$2-$4" > "$out/bdn-$2-$4.log" 2>&1)
  sed -n '/^| *Method/,/^$/p' "$out/bdn-$2-$4.log"
}
for side in before after; do
  dir=$before; [[ $side == after ]] && dir=$after
  echo "== $side: $dir"
  bench "$dir" "$side" mainline,hgm,hgm-full-split,vma-convert 64
  bench "$dir" "$side" hgm 1024
done
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
for cmd in "run scenarios/" "compare"; do
  b=""; a=""
  for i in 1 2 3; do
    b+=" $(cd "$before" && ms ./hugefault $cmd)"; a+=" $(cd "$after" && ms ./hugefault $cmd)"
  done
  echo "./hugefault $cmd (ms, 3 runs): before$b; after$a"
done
