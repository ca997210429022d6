#!/usr/bin/env bash
# The fuzz campaign of issue 12 outside the timed suite: N inputs (default 10000): mutated scenarios through `hugefault run`,
# mutated fleet configs through `hugefault fleet` and tampered shard outputs through `hugefault fleet merge`,
# each classified (exit 0/1/2 fine; exit 70, a stack trace, an escaping exception, out of memory or > 20 s of CPU is a finding).
# Usage: tools/fuzz/run.sh [N] [SEED] [FIRST]; findings and summary.txt go to $HUGEFAULT_FUZZ_OUT (default /tmp/hf-fuzz-long).
set -uo pipefail
cd "$(dirname "$0")/../.."
export HUGEFAULT_FUZZ_N="${1:-10000}" HUGEFAULT_FUZZ_SEED="${2:-1}" HUGEFAULT_FUZZ_FIRST="${3:-0}"
export HUGEFAULT_FUZZ_OUT="${HUGEFAULT_FUZZ_OUT:-/tmp/hf-fuzz-long}"
mkdir -p "$HUGEFAULT_FUZZ_OUT"
dotnet test --project tests/HugeFault.Tests -c Release -- --filter-method "HugeFault.Tests.Fuzz.InputFuzzTests.Long_mode" >"$HUGEFAULT_FUZZ_OUT/test.log" 2>&1
rc=$?
cat "$HUGEFAULT_FUZZ_OUT/summary.txt" 2>/dev/null || tail -20 "$HUGEFAULT_FUZZ_OUT/test.log"
ls "$HUGEFAULT_FUZZ_OUT"/finding-*.txt 2>/dev/null | head -20
exit $rc
