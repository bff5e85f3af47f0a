#!/bin/sh
# Hosts never compare clocks: a holder whose monotonic and boot clocks
# are 12 days ahead of the taker's (a time namespace) is still taken over
# only after the lease, and a frozen one still learns it lost.
. "$(dirname "$0")/lib.sh"
setup "$1"
unshare --time --boottime 1000000 --monotonic 1000000 true 2>/dev/null ||
	skip "no time namespaces (unshare --time)"

unshare --time --boottime 1000000 --monotonic 1000000 \
	"$FTCTL" lock acquire "$AREA" vm2 --host-id 3 --hold >"$WORK/c.out" 2>"$WORK/c.err" &
echo $! >"$WORK/c.pid"
PIDS="$PIDS $!"
wait_line c "acquired vm2" 10
hold d 4 vm2 --timeout 60
sleep 0.3
t0=$(now_ms)
kill -STOP "$(pid_of c)"
wait_line d "acquired vm2" 30
el=$(($(now_ms) - t0))
[ $el -ge $((DEAD_MS - 300)) ] || fail "takeover $el ms after the freeze, D is $DEAD_MS ms"
kill -CONT "$(pid_of c)"
wait_exit c 10
[ $RC = 4 ] || fail "resumed holder exit $RC, want 4"
grep -qx "lost vm2" "$WORK/c.out" || fail "resumed holder did not print lost"
kill -TERM "$(pid_of d)"
wait_exit d 10
[ $RC = 0 ] || fail "d exit $RC"
pass
