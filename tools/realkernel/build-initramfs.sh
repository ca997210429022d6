#!/usr/bin/env bash
# Builds the guest initramfs: busybox-static, the NativeAOT HugeFault.RealRunner with the three
# libraries it links (libc, libm, ld-linux), hwpoison-inject.ko of every kernel setup.sh unpacked
# (/modules/RELEASE/, loaded by `uname -r`, so one initramfs boots all of them) and an /init that runs one probe
# named on the kernel command line (hfprobe=NAME, which the kernel hands to /init as $hfprobe), or
# the scenario plan /scenarios/KEY.json named by hfscenario=KEY (plans, their YAML and boot arguments
# are written to $CACHE/scenarios/ by `hugefault oracle` before it calls this script).
# Output: $CACHE/initramfs.cpio.gz. Run setup.sh first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CACHE:-$repo/.cache/realkernel}
[ -s "$CACHE/hwpoison-inject.ko" ] || { echo "build-initramfs: run tools/realkernel/setup.sh first" >&2; exit 1; }
# one build at a time (the oracle and the recovery demo may start one together); -o: build servers do not inherit the lock
if [ -z "${HF_INITRAMFS_LOCKED:-}" ]; then HF_INITRAMFS_LOCKED=1 exec flock -o "$CACHE/.build-initramfs.lock" "$0" "$@"; fi

dotnet publish "$repo/src/HugeFault.RealRunner/HugeFault.RealRunner.csproj" -c Release -r linux-x64 \
  -o "$CACHE/runner" -nologo -v quiet >&2
runner=$CACHE/runner/HugeFault.RealRunner
# the recovery agent's demo (tools/realkernel/recovery.sh; hfrecovery=ARGS below)
dotnet publish "$repo/src/HugeFault.Recovery.Demo/HugeFault.Recovery.Demo.csproj" -c Release -r linux-x64 \
  -o "$CACHE/recovery-demo" -nologo -v quiet >&2
demo=$CACHE/recovery-demo/HugeFault.Recovery.Demo

root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,proc,sys,dev,tmp,runner,scenarios,lib64,lib/x86_64-linux-gnu}
if [ -d "$CACHE/scenarios" ]; then cp "$CACHE"/scenarios/* "$root/scenarios/" 2>/dev/null || true; fi
cp /bin/busybox "$root/bin/busybox"
cp "$runner" "$demo" "$root/runner/"
for kdir in "$CACHE"/kernels/*/; do
  [ -s "$kdir/hwpoison-inject.ko" ] || continue
  mkdir -p "$root/modules/$(cat "$kdir/kernel-version")"
  cp "$kdir/hwpoison-inject.ko" "$root/modules/$(cat "$kdir/kernel-version")/"
done
cp -L "$CACHE/hwpoison-inject.ko" "$root/"
# Copy exactly what the runner links against (resolved on this host, which is the same Debian 12).
ldd "$runner" "$demo" | awk '/=>/ {print $3} /ld-linux/ && !/=>/ {print $1}' | while read -r lib; do
  [ -e "$lib" ] || continue
  case "$lib" in
    */ld-linux*) cp -L "$lib" "$root/lib64/" ;;
    *) cp -L "$lib" "$root/lib/x86_64-linux-gnu/" ;;
  esac
done
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
# hugetlbfs and tmpfs where scenarios open files (the model's /dev/hugepages, /dev/hugepages1G, /dev/shm)
mkdir -p /dev/hugepages /dev/hugepages1G /dev/shm
mount -t hugetlbfs -o pagesize=2M none /dev/hugepages
mount -t hugetlbfs -o pagesize=1G none /dev/hugepages1G 2>/dev/null
mount -t tmpfs tmpfs /dev/shm
echo "@@@ INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
ko=/modules/$(uname -r)/hwpoison-inject.ko; [ -e "$ko" ] || ko=/hwpoison-inject.ko
if insmod "$ko"; then echo "@@@ insmod ok"; else echo "@@@ insmod failed"; fi
if [ -n "${hfrecovery:-}" ]; then
  echo "@@@ BEGIN recovery uptime=$(cut -d' ' -f1 /proc/uptime)"
  /runner/HugeFault.Recovery.Demo $(echo "$hfrecovery" | tr ',' ' ')
  rc=$?
  echo "@@@ END recovery rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
elif [ -n "${hfscenario:-}" ]; then
  echo "@@@ BEGIN $hfscenario uptime=$(cut -d' ' -f1 /proc/uptime)"
  /runner/HugeFault.RealRunner run-scenario "/scenarios/$hfscenario.json"
  rc=$?
  echo "@@@ END $hfscenario rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
else
  echo "@@@ BEGIN ${hfprobe:-none} uptime=$(cut -d' ' -f1 /proc/uptime)"
  /runner/HugeFault.RealRunner probe "${hfprobe:-selftest}"
  rc=$?
  echo "@@@ END ${hfprobe:-none} rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
fi
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$CACHE/initramfs.cpio.gz.tmp"
mv "$CACHE/initramfs.cpio.gz.tmp" "$CACHE/initramfs.cpio.gz"
echo "$CACHE/initramfs.cpio.gz"
