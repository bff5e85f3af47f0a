#!/bin/sh
# check.sh - every test of kvm-ft, as `make check` runs them:
#   1. unit and end-to-end tests (ctest) on an optimised build,
#   2. the same under AddressSanitizer + UBSan,
#   3. the kernel selftests in a TCG VM (selftests/run_kernel_tests.sh),
#   4. the on-disk lock across two TCG VMs sharing a disk
#      (selftests/lock/run_two_vms.sh).
# Ends with one line "N passed, N failed, N skipped" over all suites and
# exits non-zero if anything failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-2}
pass=0 fail=0 skip=0 bad=""
t_start=$(date +%s) t_mark=$t_start
# took: $el = seconds since the last call (each stage says how long it took).
took() { now=$(date +%s); el="$((now - t_mark)) s"; t_mark=$now; }

# ctest_suite NAME BUILD_DIR CMAKE_ARGS...
ctest_suite() {
	name=$1 dir=$2
	shift 2
	echo "== $name: configure and build ($dir)"
	if ! cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > "$dir.cmake.log" 2>&1 ||
	   ! cmake --build "$dir" -j "$jobs" > "$dir.build.log" 2>&1; then
		tail -40 "$dir.cmake.log" "$dir.build.log" 2>/dev/null
		echo "$name: build failed"
		fail=$((fail + 1)); bad="$bad $name-build"
		return
	fi
	took; echo "== $name: built in $el; ctest"
	(cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 600) > "$dir.ctest.log" 2>&1
	took; echo "== $name: ctest ran $el"
	grep -E 'Test +#[0-9]+:' "$dir.ctest.log" | sed "s/^/$name: /"
	p=$(grep -Ec 'Test +#[0-9]+: .* +Passed' "$dir.ctest.log")
	s=$(grep -Ec 'Test +#[0-9]+: .*\*\*\*Skipped|Test +#[0-9]+: .* +Not Run' "$dir.ctest.log")
	t=$(grep -Ec 'Test +#[0-9]+:' "$dir.ctest.log")
	f=$((t - p - s))
	if [ "$f" -gt 0 ]; then
		grep -E -B2 -A30 'Test +#[0-9]+: .*(Failed|Timeout|Exception)' "$dir.ctest.log" | head -200
		bad="$bad $name"
	fi
	if [ "$t" -eq 0 ]; then
		echo "$name: ctest ran no test"; fail=$((fail + 1)); bad="$bad $name-empty"
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

ctest_suite unit "$top/build"
ctest_suite asan "$top/build-asan" -DKVMFT_SANITIZE=ON -DKVMFT_BENCH=OFF

# vm_suite NAME LOG SCRIPT: a suite of TCG VMs ending "N passed, ...".
vm_suite() {
	name=$1 log=$2 script=$3
	echo "== $name"
	BUILD="$top/build" sh "$script" > "$log" 2>&1
	cat "$log"
	took; echo "== $name: $el"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		set -- $line
		pass=$((pass + $1)); fail=$((fail + $3)); skip=$((skip + $5))
		[ "$3" -eq 0 ] || bad="$bad $name"
	else
		fail=$((fail + 1)); bad="$bad $name-norun"
	fi
}

vm_suite "kernel selftests (TCG VM)" "$top/build/selftests.log" \
	"$top/selftests/run_kernel_tests.sh"
vm_suite "on-disk lock across two TCG VMs" "$top/build/lock-vms.log" \
	"$top/selftests/lock/run_two_vms.sh"

[ -z "$bad" ] || echo "failed suites:$bad"
echo "== all suites: $(( $(date +%s) - t_start )) s"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
