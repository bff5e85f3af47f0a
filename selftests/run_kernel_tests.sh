#!/bin/sh
# run_kernel_tests.sh - build kvm_ft.ko and its selftests, boot one test
# VM (selftests/rig) that runs them all, print the TAP results and
# "N passed, N failed, N skipped". Expects ftctl, ftlogd, ftvmm,
# ftvmm_kvm_test and the ftvmm guests (target ftvmm_guests) built in $BUILD.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${BUILD:-$top/build}" && pwd)
out=$build/selftests
mkdir -p "$out"

make -s -C "$top/kmod"
if [ ! -f "$out/ksft/kselftest_harness.h" ]; then
	src=$(ls /usr/src/linux-source-6.1.tar.* | head -n 1)
	mkdir -p "$out/ksft"
	tar -xf "$src" -C "$out/ksft" --strip-components=4 \
		--wildcards '*/tools/testing/selftests/kselftest.h' \
		'*/tools/testing/selftests/kselftest_harness.h'
fi
make -s -C "$top/selftests/kvm_ft" OUTPUT="$out" KSFT_DIR="$out/ksft"

# Two ftlogd hosts for the VM (loopback): certificates and configs.
rm -rf "$out/ft"
mkdir -p "$out/ft"
sh "$top/ftlogd/ftlogd-mkcert" ca "$out/ft/ca" > /dev/null
for h in a b; do
	sh "$top/ftlogd/ftlogd-mkcert" host "$out/ft/ca" "$out/ft" $h > /dev/null
done
cp "$out/ft/ca/ca.pem" "$out/ft/ca.pem"
# The VM has one CPU: there ftlogd runs at normal priority by default
# (at SCHED_FIFO the two daemons left the VMMs only what RT throttling
# spares, and a guest that needs 1-2 s took more than 100 s).
ftconf() { # HOST SELF PEER PEER_ADDR
	printf '%s\n' "host_name = $1" "ca = /etc/ft/ca.pem" "cert = /etc/ft/$1.pem" \
		"key = /etc/ft/$1.key" "control_socket = /tmp/$1.sock" "listen = $2:7301" \
		"[peer $3]" "path = $2 -> $4:7301" > "$out/ft/$1.conf"
}
ftconf a 127.0.0.1 b 127.0.0.2
ftconf b 127.0.0.2 a 127.0.0.1

# ftvmm's KVM tests and command-line test run in the VM too, with the
# guests at /guests (FTVMM_GUEST_DIR in the payload).
guests=""
for g in compute ticker rtc dirtier blkrmw netecho smp smp_small; do
	guests="$guests $build/ftvmm/guests/$g.elf:/guests/$g.elf"
done

# shellcheck disable=SC2086
"$top/selftests/rig/mkinitramfs.sh" "$out/kvm_ft.cpio.gz" \
	"$top/selftests/kvm_ft/vm_payload.sh" \
	"$top/kmod/kvm_ft.ko:/lib/kvm_ft.ko" \
	"$out/kvm_ft_test:/tests/kvm_ft_test" \
	"$out/kvm_ft_append_test:/tests/kvm_ft_append_test" \
	"$out/kvm_ft_abi_test:/tests/kvm_ft_abi_test" \
	"$out/kvm_ft_nl_test:/tests/kvm_ft_nl_test" \
	"$out/guest_loop" "$build/ftctl/ftctl" "$build/ftlogd/ftlogd" \
	"$build/ftvmm/ftvmm" "$build/ftvmm/guests/ticker.elf:/tests/ticker.elf" \
	"$build/ftvmm/ftvmm_kvm_test" "$top/ftvmm/tests/cli_test.sh:/tests/cli_test.sh" \
	$guests \
	$(for f in ca.pem a.pem a.key b.pem b.key a.conf b.conf; do echo "$out/ft/$f:/etc/ft/$f"; done)
echo "selftests: booting the test VM (log: $out/kvm_ft.log)"
start=$(date +%s)
"$top/selftests/rig/boot.sh" "$out/kvm_ft.cpio.gz" "$out/kvm_ft.log" 1200 ||
	echo "selftests: qemu exited with $?"
echo "selftests: VM ran $(( $(date +%s) - start )) s"
"$top/selftests/rig/tap-summary.sh" "$out/kvm_ft.log"
