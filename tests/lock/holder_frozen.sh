#!/bin/sh
# A holder frozen (SIGSTOP) past its lease: the other host takes over;
# when the frozen one resumes it prints "lost vm1" and exits 4 at once,
# having printed nothing else as owner.
. "$(dirname "$0")/lib.sh"
setup "$1"

hold a 1 vm1
wait_line a "acquired vm1" 10
hold b 2 vm1 --timeout 60
sleep 0.3
kill -STOP "$(pid_of a)"
wait_line b "acquired vm1" 30
kill -CONT "$(pid_of a)"
wait_exit a 10
[ $RC = 4 ] || fail "resumed holder exit $RC, want 4 (lost)"
[ "$(cat "$WORK/a.out")" = "acquired vm1
lost vm1" ] || fail "resumed holder output is not exactly acquired/lost"
kill -0 "$(pid_of b)" || fail "new owner died"
"$FTCTL" lock show "$AREA" >"$WORK/show.out"
grep -q "^resource vm1 host 2 .* current" "$WORK/show.out" || fail "show: vm1 not held by host 2"
kill -TERM "$(pid_of b)"
wait_exit b 10
[ $RC = 0 ] || fail "b exit $RC"
pass
