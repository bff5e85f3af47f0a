#!/bin/sh
# run.sh - every benchmark (`make bench`); each prints its figures as
# ratios against a baseline measured in the same run. Needs root (network
# namespaces, /dev/kvm) and a build in $BUILD (default build/).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
echo "== kvm_ft.ko capture (TCG VM)"
BUILD=$build sh "$top/bench/kmod/run.sh"
echo "== ftvmm"
"$build/bench/vmm/vmm_bench" 3
sh "$top/bench/vmm/blk.sh" "$build" 5
sh "$top/bench/vmm/smp.sh" "$build" 5
sh "$top/bench/vmm/net_echo.sh" "$build" 2000
echo "== on-disk lock"
"$build/bench/lock/lock_bench" "$build/ftctl/ftctl" --trials 24 --parallel 4 --sim-seconds 30
echo "== CRC-32C"
[ -x "$build/bench/log/crc_bench" ] && "$build/bench/log/crc_bench" --benchmark_min_time=0.2
echo "== ftlogd"
sh "$top/bench/logd/run.sh" "$build"
echo "== fthbd"
sh "$top/bench/hb/run.sh" "$build"
