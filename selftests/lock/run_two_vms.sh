#!/bin/sh
# run_two_vms.sh - the on-disk lock across two real hosts: two TCG VMs of
# the kernel rig (selftests/rig) share one raw disk image (virtio-blk,
# share-rw=on, no host file locking); ftctl in each uses O_DIRECT sector
# I/O on /dev/vda. VM a holds vm1, then its holder is frozen past the
# lease; VM b must time out while a holds and take over after. Prints the
# TAP lines of both and "N passed, N failed, N skipped".
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build}
out=$build/selftests/lock2
mkdir -p "$out"
rm -f "$out"/*.log
truncate -s 0 "$out/disk.img"
truncate -s 16M "$out/disk.img"
# Timeouts for a loaded emulator: renew 1 s, I/O 2 s, lease 6 s.
"$build/ftctl/ftctl" lock init "$out/disk.img" --renew-ms 1000 \
	--io-timeout-ms 2000 --lease-ms 6000 > /dev/null
for h in a b; do
	"$top/selftests/rig/mkinitramfs.sh" "$out/$h.cpio.gz" \
		"$top/selftests/lock/vm_host_$h.sh" "$build/ftctl/ftctl"
done
disk="-drive file=$out/disk.img,format=raw,if=none,id=d0,file.locking=off,cache=none"
for h in a b; do
	# shellcheck disable=SC2086
	"$top/selftests/rig/boot.sh" "$out/$h.cpio.gz" "$out/$h.log" 600 \
		-smp 1 $disk -device virtio-blk-pci,drive=d0,share-rw=on &
done
wait
cat "$out/a.log" "$out/b.log" | grep -v '^dmesg' > "$out/both.log"
grep '^#' "$out/both.log" || true
"$top/selftests/rig/tap-summary.sh" "$out/both.log" 2
