#!/usr/bin/env bash
# Builds the hugefault image from the Dockerfile with docker or podman (whichever runs), tagged with the commit.
# Exit 77 with the reason when no container engine can build here (no daemon, no registry for the base images).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
tag="hugefault:$(git -C "$repo" describe --always --dirty 2>/dev/null || echo dev)"
engine=""
for e in docker podman; do
  if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine="$e"; break; fi
done
[ -n "$engine" ] || { echo "tools/docker/build.sh: SKIPPED: neither docker nor podman can reach a running engine here"; exit 77; }
"$engine" build -t "$tag" -t hugefault:latest "$repo"
"$engine" run --rm "$tag" fleet --servers 2000 --policy mainline,hgm --json >/dev/null
echo "tools/docker/build.sh: built and ran $tag with $engine"
