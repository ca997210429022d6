#!/usr/bin/env bash
# Installs what the real-kernel differential checks need and unpacks a Debian 12 kernel with
# CONFIG_MEMORY_FAILURE=y into .cache/realkernel/ (gitignored). Idempotent: re-running only
# re-checks; a newer kernel package in the archive is picked up automatically.
#
# Outputs (under $CACHE, default <repo>/.cache/realkernel):
#   vmlinuz               the kernel image
#   hwpoison-inject.ko    the decompressed module behind debugfs hwpoison/corrupt-pfn
#   kernel-version        the kernel release string (uname -r inside the VM)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-$repo/.cache/realkernel}
mkdir -p "$CACHE"

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

# Newest linux-image-6.12.*+deb12-amd64-unsigned known to apt (update the lists if none is known).
find_pkg() {
  apt-cache search --names-only '^linux-image-6\.12\..*\+deb12-amd64-unsigned$' | awk '{print $1}' \
    | sort -V | tail -1
}
pkg=$(find_pkg || true)
if [ -z "$pkg" ]; then apt-get update -qq; pkg=$(find_pkg); fi
[ -n "$pkg" ] || { echo "setup: no linux-image-6.12.*+deb12-amd64-unsigned package found" >&2; exit 1; }
kver=${pkg#linux-image-}; kver=${kver%-unsigned}

if [ "$(cat "$CACHE/kernel-version" 2>/dev/null || true)" != "$kver" ] || [ ! -s "$CACHE/vmlinuz" ] \
   || [ ! -s "$CACHE/hwpoison-inject.ko" ]; then
  echo "setup: fetching $pkg" >&2
  dl=$(mktemp -d); chmod 755 "$dl"; chown _apt "$dl" 2>/dev/null || true; trap 'rm -rf "$dl"' EXIT
  (cd "$dl" && apt-get download -qq "$pkg")
  dpkg-deb -x "$dl"/*.deb "$dl/root"
  cp "$dl/root/boot/vmlinuz-$kver" "$CACHE/vmlinuz.tmp"
  ko=$(find "$dl/root" -name 'hwpoison-inject.ko*' | head -1)
  [ -n "$ko" ] || { echo "setup: hwpoison-inject.ko not in $pkg" >&2; exit 1; }
  case "$ko" in
    *.xz) xz -dc "$ko" > "$CACHE/hwpoison-inject.ko.tmp" ;;
    *.zst) zstd -dc "$ko" > "$CACHE/hwpoison-inject.ko.tmp" ;;
    *) cp "$ko" "$CACHE/hwpoison-inject.ko.tmp" ;;
  esac
  cp "$dl/root/boot/config-$kver" "$CACHE/config"
  mv "$CACHE/vmlinuz.tmp" "$CACHE/vmlinuz"
  mv "$CACHE/hwpoison-inject.ko.tmp" "$CACHE/hwpoison-inject.ko"
  echo "$kver" > "$CACHE/kernel-version"
fi
grep -q '^CONFIG_MEMORY_FAILURE=y' "$CACHE/config" || { echo "setup: kernel lacks CONFIG_MEMORY_FAILURE" >&2; exit 1; }
echo "$kver"
