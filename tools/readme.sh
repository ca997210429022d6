#!/usr/bin/env bash
# Regenerates the README's example blocks from real runs (tests/HugeFault.Tests/Cli/ReadmeTests.cs checks them).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build HugeFault.slnx -c Release -v q >/dev/null
HUGEFAULT_README_WRITE=1 dotnet test --project tests/HugeFault.Tests -c Release --no-build -- --filter-method "*The_readme_examples_are_what_the_tool_prints" >/dev/null
git --no-pager diff --stat README.md
