#!/bin/sh
# run_model.sh {expect-pass|expect-fail} [SPIN_DEFINES...]
# Check lock.pml with spin: generate the verifier, compile it, search the
# whole (time-bounded) state space for an assertion violation.
# expect-pass: succeed only if no violation exists (the protocol is safe).
# expect-fail: succeed only if spin finds a counterexample (a deliberately
# broken variant, proving the check can fail). Exit 77 if spin is absent.
set -eu
mode=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
command -v spin >/dev/null || { echo "SKIP: spin not installed (Debian package spin)"; exit 77; }
command -v cc >/dev/null || { echo "SKIP: no C compiler"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$here/lock.pml" "$dir/"
cd "$dir"
spin -a "$@" lock.pml >spin.log
# Memory bound: the full search takes ~500 MB and well under a minute.
cc -O2 -w -DSAFETY -DMEMLIM=1024 -o pan pan.c
./pan -m1000000 >pan.log 2>&1 || true
errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.log)
states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' pan.log)
if grep -q "memory limit\|out of memory\|Search not completed\|max search depth too small" pan.log && [ "${errors:-0}" = 0 ]; then
	cat pan.log
	echo "FAIL: search incomplete"
	exit 1
fi
echo "spin $* : errors ${errors:-?}, states ${states:-?}"
case "$mode:${errors:-x}" in
expect-pass:0) echo "PASS: no two owners in any reachable state" ;;
expect-fail:0) echo "FAIL: the broken variant was not caught"; exit 1 ;;
expect-fail:x) cat pan.log; echo "FAIL: no result"; exit 1 ;;
expect-fail:*) grep -m1 "assertion violated" pan.log; echo "PASS: counterexample found, as expected" ;;
*) cat pan.log; spin -t -p lock.pml | tail -40; echo "FAIL: counterexample"; exit 1 ;;
esac
