#!/bin/sh
# A holder killed with SIGKILL: a waiting host takes the VM over, but
# never sooner than the host-dead time after the holder's last renewal.
. "$(dirname "$0")/lib.sh"
setup "$1"

hold a 1 vm1
wait_line a "acquired vm1" 10
hold b 2 vm1 --timeout 60
sleep 0.5
t0=$(now_ms)
kill -KILL "$(pid_of a)"
wait_line b "acquired vm1" 30
el=$(($(now_ms) - t0))
# The last renewal landed at most renew + io timeout (300 ms) before the
# kill; taking over earlier than D after it would be a protocol bug. (A
# loaded machine only makes the takeover later, never earlier.)
[ $el -ge $((DEAD_MS - 300)) ] || fail "takeover $el ms after the kill, D is $DEAD_MS ms"
"$FTCTL" lock show "$AREA" >"$WORK/show.out"
grep -q "^resource vm1 host 2 .* current" "$WORK/show.out" || fail "show: vm1 not held by host 2"
kill -TERM "$(pid_of b)"
wait_exit b 10
[ $RC = 0 ] || fail "b exit $RC after SIGTERM"
echo "takeover seen $el ms after SIGKILL (D = $DEAD_MS ms)"
pass
