#!/bin/sh
# run.sh - build and run the kvm_ft.ko benchmarks in a TCG test VM.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${BUILD:-$top/build}/bench-kmod
mkdir -p "$out"
make -s -C "$top/kmod"
# The selftests' ring consumer and micro-guests (selftests/lib).
make -s -C "$top/selftests/lib" OUTPUT="$out"
cc -O2 -Wall -Werror -pthread -I"$top/uapi" -I"$top/selftests/lib" -o "$out/kvm_ft_bench" \
	"$top/bench/kmod/kvm_ft_bench.c" "$out/libkvmft_selftest.a"
"$top/selftests/rig/mkinitramfs.sh" "$out/bench.cpio.gz" \
	"$top/bench/kmod/vm_payload.sh" "$top/kmod/kvm_ft.ko:/lib/kvm_ft.ko" \
	"$out/kvm_ft_bench"
# A benchmark may print nothing for minutes: the watchdog waits longer.
RIG_STALL_S=${RIG_STALL_S:-600} "$top/selftests/rig/boot.sh" "$out/bench.cpio.gz" "$out/bench.log" 1200 || true
grep '^bench:' "$out/bench.log"
