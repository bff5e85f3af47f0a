#!/bin/sh
# Storage cut from the holder's side only (an LD_PRELOAD shim makes its
# reads and writes hang, or fail): its fence fires at the lease deadline
# although its renewal is stuck, it prints "lost vm1" and exits 4, and it
# has done so by the time the other host, whose storage works, takes over.
. "$(dirname "$0")/lib.sh"
setup "$1"
IOCUT=$2
[ -f "$IOCUT" ] || fail "no iocut library at $IOCUT"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"

for mode in hang error; do
	rm -f "$WORK/cut"
	KVMFT_IOCUT="$WORK/cut" LD_PRELOAD="$IOCUT" hold a 1 vm-$mode
	wait_line a "acquired vm-$mode" 10
	hold b 2 vm-$mode --timeout 60
	sleep 0.3
	echo $mode >"$WORK/cut"
	wait_line b "acquired vm-$mode" 30
	grep -qx "lost vm-$mode" "$WORK/a.out" ||
		fail "$mode: new owner acquired while the cut holder had not fenced"
	wait_exit a 10
	[ $RC = 4 ] || fail "$mode: cut holder exit $RC, want 4"
	grep -q "expired" "$WORK/a.err" || fail "$mode: no reason given"
	rm -f "$WORK/cut"
	kill -TERM "$(pid_of b)"
	wait_exit b 10
	[ $RC = 0 ] || fail "$mode: b exit $RC"
done
pass
