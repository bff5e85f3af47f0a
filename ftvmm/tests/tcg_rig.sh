#!/bin/sh
# tcg_rig.sh BUILD_DIR [TEST_FILTER] - run ftvmm's KVM tests and command-
# line test inside the TCG kernel rig (selftests/rig: Debian's kernel under
# qemu -cpu max, nested KVM) with kvm_ft.ko loaded before kvm.ko, when it
# is built. Slow (TCG emulates the guests too): not part of ctest.
# Prints the tests' output; exits 0 only if both passed.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
filter=${2:-}
out=$build/ftvmm-rig
mkdir -p "$out"
cat > "$out/payload.sh" <<EOF2
for m in \$(cat /lib/modules/load); do
	case \$m in */kvm.ko) [ -f /lib/kvm_ft.ko ] && insmod /lib/kvm_ft.ko;; esac
	insmod "\$m" 2>/dev/null
done
echo "rig: /dev/kvm \$(test -c /dev/kvm && echo yes) /dev/kvm_ft \$(test -c /dev/kvm_ft && echo yes)"
cd /tmp
# The rig's VM has 1 CPU: the SMP worker's vCPUs share it; few rounds.
export FTVMM_SMP_GUEST=smp_small
/bin/ftvmm_kvm_test $filter; echo "rig: ftvmm_kvm_test exit \$?"
sh /bin/cli_test.sh /bin/ftvmm /guests; echo "rig: cli_test exit \$?"
EOF2
files="$build/ftvmm/ftvmm $build/ftvmm/ftvmm_kvm_test $top/ftvmm/tests/cli_test.sh"
for g in compute ticker rtc dirtier blkrmw smp smp_small; do
	files="$files $build/ftvmm/guests/$g.elf:/guests/$g.elf"
done
[ -f "$top/kmod/kvm_ft.ko" ] && files="$files $top/kmod/kvm_ft.ko:/lib/kvm_ft.ko"
# The test binary looks for guests where it was built: mirror that path.
for g in compute ticker rtc dirtier blkrmw smp smp_small; do
	files="$files $build/ftvmm/guests/$g.elf:$build/ftvmm/guests/$g.elf"
done
# shellcheck disable=SC2086
sh "$top/selftests/rig/mkinitramfs.sh" "$out/initrd.gz" "$out/payload.sh" $files
sh "$top/selftests/rig/boot.sh" "$out/initrd.gz" "$out/console.log" 1500 || true
grep -v '^\s*$' "$out/console.log" | grep -v '^\[' || true
grep -q "rig: ftvmm_kvm_test exit 0" "$out/console.log" &&
	grep -q "rig: cli_test exit 0" "$out/console.log"
