#!/usr/bin/env bash
# Installs what the real-kernel differential checks need and unpacks Debian 12's kernels with
# CONFIG_MEMORY_FAILURE=y into .cache/realkernel/kernels/SERIES/ (gitignored): the newest
# linux-image-6.12.*+deb12-amd64-unsigned and the newest linux-image-6.1.0-*-amd64-unsigned.
# Idempotent: re-running only re-checks; a newer kernel package in the archive is picked up.
#   tools/realkernel/setup.sh             both kernels (KERNELS="6.12 6.1" by default)
#   KERNELS=6.12 tools/realkernel/setup.sh  only the one named
#
# Outputs (under $CACHE, default <repo>/.cache/realkernel), per kernel series S (6.12, 6.1):
#   kernels/S/vmlinuz            the kernel image
#   kernels/S/hwpoison-inject.ko the decompressed module behind debugfs hwpoison/corrupt-pfn
#   kernels/S/kernel-version     the kernel release string (uname -r inside the VM)
#   kernels/S/package-version    the Debian package version (upstream sublevel, e.g. 6.1.192-3)
#   kernels/S/config             the kernel's config
# and, for callers of the single-kernel layout, vmlinuz, hwpoison-inject.ko, kernel-version and config
# as symlinks to the default kernel's (6.12). Prints one kernel release per line, the default last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-$repo/.cache/realkernel}
KERNELS=${KERNELS:-6.12 6.1}
default_series=6.12
mkdir -p "$CACHE/kernels"

need=(qemu-system-x86 busybox-static xz-utils cpio clang zlib1g-dev)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The package name pattern of each kernel series Debian 12 ships.
pattern() {
  case "$1" in
    6.12) echo '^linux-image-6\.12\..*\+deb12-amd64-unsigned$' ;;
    6.1) echo '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
    *) echo "setup: unknown kernel series '$1' (known: 6.12, 6.1)" >&2; return 1 ;;
  esac
}
# Newest package of the series known to apt.
find_pkg() { apt-cache search --names-only "$(pattern "$1")" | awk '{print $1}' | sort -V | tail -1; }

# A cache made before kernels/ existed holds the 6.12 kernel at the top: move it instead of fetching again.
if [ -f "$CACHE/kernel-version" ] && [ ! -L "$CACHE/kernel-version" ] && [ ! -e "$CACHE/kernels/$default_series/kernel-version" ]; then
  mkdir -p "$CACHE/kernels/$default_series"
  for f in vmlinuz hwpoison-inject.ko config kernel-version; do
    [ -e "$CACHE/$f" ] && mv "$CACHE/$f" "$CACHE/kernels/$default_series/$f"
  done
fi

updated=0
fetch() { # fetch SERIES: make sure kernels/SERIES holds the newest package of that series
  local series=$1 pkg kver dir dl ko
  pattern "$series" >/dev/null
  pkg=$(find_pkg "$series" || true)
  if [ -z "$pkg" ] && [ $updated -eq 0 ]; then apt-get update -qq; updated=1; pkg=$(find_pkg "$series"); fi
  [ -n "$pkg" ] || { echo "setup: no package matching $(pattern "$series") found" >&2; return 1; }
  kver=${pkg#linux-image-}; kver=${kver%-unsigned}
  dir=$CACHE/kernels/$series
  mkdir -p "$dir"
  if [ "$(cat "$dir/kernel-version" 2>/dev/null || true)" != "$kver" ] || [ ! -s "$dir/vmlinuz" ] \
     || [ ! -s "$dir/hwpoison-inject.ko" ] || [ ! -s "$dir/package-version" ]; then
    echo "setup: fetching $pkg" >&2
    dl=$(mktemp -d); chmod 755 "$dl"; chown _apt "$dl" 2>/dev/null || true
    (cd "$dl" && apt-get download -qq "$pkg")
    dpkg-deb -x "$dl"/*.deb "$dl/root"
    dpkg-deb -f "$dl"/*.deb Version > "$dir/package-version.tmp"
    cp "$dl/root/boot/vmlinuz-$kver" "$dir/vmlinuz.tmp"
    ko=$(find "$dl/root" -name 'hwpoison-inject.ko*' | head -1)
    [ -n "$ko" ] || { echo "setup: hwpoison-inject.ko not in $pkg" >&2; rm -rf "$dl"; return 1; }
    case "$ko" in
      *.xz) xz -dc "$ko" > "$dir/hwpoison-inject.ko.tmp" ;;
      *.zst) zstd -dc "$ko" > "$dir/hwpoison-inject.ko.tmp" ;;
      *) cp "$ko" "$dir/hwpoison-inject.ko.tmp" ;;
    esac
    cp "$dl/root/boot/config-$kver" "$dir/config"
    mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
    mv "$dir/hwpoison-inject.ko.tmp" "$dir/hwpoison-inject.ko"
    mv "$dir/package-version.tmp" "$dir/package-version"
    echo "$kver" > "$dir/kernel-version"
    rm -rf "$dl"
  fi
  grep -q '^CONFIG_MEMORY_FAILURE=y' "$dir/config" || { echo "setup: $kver lacks CONFIG_MEMORY_FAILURE" >&2; return 1; }
}

releases=()
for s in $KERNELS; do [ "$s" = "$default_series" ] || { fetch "$s"; releases+=("$(cat "$CACHE/kernels/$s/kernel-version")"); }; done
for s in $KERNELS; do [ "$s" != "$default_series" ] || { fetch "$s"; releases+=("$(cat "$CACHE/kernels/$s/kernel-version")"); }; done
if [ -s "$CACHE/kernels/$default_series/vmlinuz" ]; then
  for f in vmlinuz hwpoison-inject.ko config kernel-version; do ln -sfn "kernels/$default_series/$f" "$CACHE/$f"; done
fi
printf '%s\n' "${releases[@]}"
