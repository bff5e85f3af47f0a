#!/bin/sh
# run_kernel_tests.sh - build kvm_ft.ko and its selftests, boot one test
# VM (selftests/rig) that runs them all, print the TAP results and
# "N passed, N failed, N skipped". Expects ftctl built in $BUILD.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
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

"$top/selftests/rig/mkinitramfs.sh" "$out/kvm_ft.cpio.gz" \
	"$top/selftests/kvm_ft/vm_payload.sh" \
	"$top/kmod/kvm_ft.ko:/lib/kvm_ft.ko" \
	"$out/kvm_ft_test:/tests/kvm_ft_test" \
	"$out/kvm_ft_abi_test:/tests/kvm_ft_abi_test" \
	"$out/kvm_ft_nl_test:/tests/kvm_ft_nl_test" \
	"$out/guest_loop" "$build/ftctl/ftctl"
echo "selftests: booting the test VM (log: $out/kvm_ft.log)"
start=$(date +%s)
"$top/selftests/rig/boot.sh" "$out/kvm_ft.cpio.gz" "$out/kvm_ft.log" 1200 ||
	echo "selftests: qemu exited with $?"
echo "selftests: VM ran $(( $(date +%s) - start )) s"
"$top/selftests/rig/tap-summary.sh" "$out/kvm_ft.log"
