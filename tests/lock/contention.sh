#!/bin/sh
# Two hosts want one VM: the second waits and times out while the first
# holds it (exit 3, owner named); a clean release (SIGTERM) frees it at
# once; two hosts starting together never both own it.
. "$(dirname "$0")/lib.sh"
setup "$1"

hold a 1 vm1
wait_line a "acquired vm1" 10
rc=0
"$FTCTL" lock acquire "$AREA" vm1 --host-id 2 --timeout 3 >"$WORK/b.out" 2>"$WORK/b.err" || rc=$?
[ $rc = 3 ] || fail "second acquirer: exit $rc, want 3 (timeout)"
grep -q "vm1 is owned by host 1" "$WORK/b.err" || fail "timeout message does not name the owner"
grep -q acquired "$WORK/b.out" && fail "second acquirer claims it acquired"
"$FTCTL" -j lock show "$AREA" >"$WORK/show.out"
grep -q '"resource":"vm1"' "$WORK/show.out" || fail "show lacks vm1"

kill -TERM "$(pid_of a)"
wait_exit a 10
[ $RC = 0 ] || fail "holder exit $RC after SIGTERM, want 0"
grep -qx "released vm1" "$WORK/a.out" || fail "holder did not report the release"
# A released host id voids its claims: no waiting for the lease.
"$FTCTL" lock acquire "$AREA" vm1 --host-id 2 --timeout 1 >"$WORK/c.out" 2>&1 ||
	fail "acquire after release failed"
grep -qx "acquired vm1" "$WORK/c.out" || fail "no acquired line"

# Race: two holders start together on a fresh resource. One wins and
# keeps holding; the other gives up after its timeout without owning.
hold r1 3 vm2 --timeout 4
hold r2 4 vm2 --timeout 4
i=0
until grep -qx "acquired vm2" "$WORK/r1.out" "$WORK/r2.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -le 400 ] || fail "neither racer acquired vm2"
	sleep 0.05
done
if grep -qx "acquired vm2" "$WORK/r1.out"; then win=r1 lose=r2; else win=r2 lose=r1; fi
wait_exit $lose 20
[ $RC = 3 ] || fail "losing racer exit $RC, want 3"
grep -q acquired "$WORK/$lose.out" && fail "both racers acquired vm2"
kill -0 "$(pid_of $win)" || fail "the winner died"
kill -TERM "$(pid_of $win)"
wait_exit $win 10
[ $RC = 0 ] || fail "winner exit $RC after SIGTERM"
pass
