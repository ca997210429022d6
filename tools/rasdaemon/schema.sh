#!/usr/bin/env bash
# Creates an empty rasdaemon database with the tables the packaged rasdaemon itself creates, at OUT:
#   tools/rasdaemon/schema.sh OUT.db
# rasdaemon opens /var/lib/rasdaemon/ras-mc_event.db (its compiled-in path) and creates its tables (ras-record.c) once
# it has found the RAS tracepoints. It is run for a few seconds in a private mount namespace (unshare -m) over a tmpfs
# /var/lib/rasdaemon and a private debugfs mount, so neither the host's state directory nor its mounts change; it enables
# the ras:* tracepoints while it runs and disables them when stopped (SIGTERM, by its PID). Needs root, unshare and a
# kernel with the RAS tracepoints (events/ras/mc_event); exits non-zero with one line on stderr otherwise.
set -euo pipefail
out=${1:?usage: tools/rasdaemon/schema.sh OUT.db}
command -v rasdaemon >/dev/null || { echo "tools/rasdaemon/schema.sh: rasdaemon is not installed (tools/rasdaemon/install.sh)" >&2; exit 1; }
command -v unshare >/dev/null || { echo "tools/rasdaemon/schema.sh: unshare (util-linux) is missing" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "tools/rasdaemon/schema.sh: needs root (mount namespace, debugfs)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2016
unshare -m bash -c '
  set -eu
  work=$1
  mount --make-rprivate / 2>/dev/null || true
  mkdir -p /var/lib/rasdaemon
  mount -t tmpfs none /var/lib/rasdaemon
  mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
  [ -d /sys/kernel/debug/tracing/events/ras/mc_event ] || { echo "tools/rasdaemon/schema.sh: this kernel has no ras:mc_event tracepoint" >&2; exit 1; }
  rasdaemon -f -r >"$work/rasdaemon.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    grep -q "Listening to events" "$work/rasdaemon.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  sleep 0.5
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -s /var/lib/rasdaemon/ras-mc_event.db ] || { echo "tools/rasdaemon/schema.sh: rasdaemon created no database ($(tail -1 "$work/rasdaemon.log"))" >&2; exit 1; }
  cp /var/lib/rasdaemon/ras-mc_event.db "$work/ras.db"
' bash "$work"
tmp="$out.tmp.$$"
cp "$work/ras.db" "$tmp" && mv "$tmp" "$out"
echo "tools/rasdaemon/schema.sh: rasdaemon $(dpkg-query -W -f='${Version}' rasdaemon 2>/dev/null || echo ?) created $(basename "$out")"
