#!/usr/bin/env bash
# Behaviour guard for changes that must not change what the model computes (speed work, refactors).
#   tools/golden.sh capture DIR   record every output below with the current build into DIR
#   tools/golden.sh check DIR     record them again into a temporary folder and diff against DIR (exit 1 on any change)
# Recorded: every scenario's trace (run scenarios/ as text and --json, and --json under each policy), `compare --json`
# (with the fleet and the sensitivity runs), `compare builtin:SET --json` for every built-in set (inaccessible bytes,
# entries written, mapcount updates, page-table bytes of every scenario under every policy), the text and HTML report
# of builtin:policies. Timing lines go to stderr and are not recorded. Runs the executable ./hugefault runs (Native AOT,
# ReadyToRun or plain build, whichever the wrapper made), building it first if it is not current; GOLDEN_CLI=path
# runs another executable instead (an older commit's build, to capture what it printed).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-}"; dir="${2:-}"
if [[ "$mode" != capture && "$mode" != check || -z "$dir" ]]; then
  echo "usage: tools/golden.sh capture|check DIR" >&2; exit 2
fi
if [[ "$mode" == check && ! -d "$dir" ]]; then echo "golden.sh: $dir does not exist; capture it first (tools/golden.sh capture $dir)" >&2; exit 2; fi
# GOLDEN_CLI=path: another build's executable instead (e.g. an older commit's, to capture what it printed)
if [[ -n "${GOLDEN_CLI:-}" ]]; then cli="$GOLDEN_CLI"
else "$here/hugefault" --help >/dev/null; cli="$(cat "$here/src/HugeFault.Cli/bin/hugefault/built")"; fi
echo "golden: $mode with $cli" >&2
out="$dir"
[[ "$mode" == check ]] && out="$(mktemp -d)"
mkdir -p "$out"
cd "$here"
policies=$("$cli" compare --help | sed -n 's/.*default: all: \([a-z0-9,-]*\)).*/\1/p')
[[ -n "$policies" ]] || { echo "golden.sh: could not read the policy list from 'compare --help'" >&2; exit 2; }
"$cli" run scenarios/ > "$out/run.txt" || true
"$cli" run scenarios/ --json > "$out/run.json" || true
for p in ${policies//,/ }; do "$cli" run scenarios/ --json --policy "$p" > "$out/run-$p.json" || true; done
"$cli" compare --json > "$out/compare.json" 2>/dev/null
# a set that fails as a whole (an internal error under one policy) is recorded policy by policy, failures as "exit N: message"
for s in conformance peers policies recovery vm; do
  "$cli" compare "builtin:$s" --json > "$out/compare-$s.json" 2>/dev/null && continue
  rm -f "$out/compare-$s.json"
  for p in ${policies//,/ }; do
    "$cli" compare "builtin:$s" --policy "$p" --json > "$out/compare-$s-$p.json" 2> "$out/err" || echo "exit $?: $(head -1 "$out/err")" >> "$out/compare-$s-$p.json"
  done
  rm -f "$out/err"
done
"$cli" compare builtin:policies --wide > "$out/compare-policies.txt" 2>/dev/null
"$cli" compare builtin:policies --html "$out/compare-policies.html" > /dev/null 2>&1
if [[ "$mode" == check ]]; then
  if diff -rq "$dir" "$out" >/dev/null; then echo "golden: identical ($(ls "$out" | wc -l) files)"; rm -rf "$out"; exit 0; fi
  diff -rq "$dir" "$out" || true
  echo "golden: DIFFERENT (new outputs kept in $out)" >&2; exit 1
fi
echo "golden: captured $(ls "$out" | wc -l) files into $out"
