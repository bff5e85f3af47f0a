#!/bin/sh
# two_host.sh - the lock scenarios across two hosts that share one disk.
#
# Each host is reached through a command prefix that runs a command there
# with stdin/stdout/stderr passed through (ssh, the VM rig's exec, or
# nothing for two processes on this machine):
#
#   EXEC_A / EXEC_B    prefix for host A / B (default: run locally)
#   FTCTL_A / FTCTL_B  ftctl on host A / B
#   AREA_A / AREA_B    the shared disk (or file) as host A / B sees it
#   SCRATCH            local directory for logs (default: mktemp -d)
#
# Scenarios: contention (B times out while A holds, exit 3), holder killed
# (B takes over), holder frozen past its lease (B takes over; A resumes,
# prints "lost", exits 4). The area is (re)initialised from A with short
# timeouts. Exit 0 on success, 1 on failure.
#
# Two TCG VMs of the kernel rig sharing a raw image (share-rw=on,
# file.locking=off; shared/notes/test-rig.md) are two real hosts: put a
# static ftctl in the initramfs, set EXEC_A/EXEC_B to the rig's command
# runner for each VM and AREA_A=AREA_B=/dev/vdb.
set -eu
EXEC_A=${EXEC_A:-}
EXEC_B=${EXEC_B:-}
: "${FTCTL_A:?}" "${FTCTL_B:?}" "${AREA_A:?}" "${AREA_B:?}"
S=${SCRATCH:-$(mktemp -d)}
BG=""
trap 'for p in $BG; do kill -KILL $p 2>/dev/null || true; done' EXIT

fail() { echo "FAIL: $*"; for f in "$S"/*.out; do echo "--- $f"; cat "$f"; done; exit 1; }

# start NAME A|B RESOURCE HOSTID ARGS...: a holder on that host, in the
# background; its remote pid is printed first ("pid N").
start()
{
	name=$1 h=$2 res=$3 id=$4
	shift 4
	if [ "$h" = A ]; then ex=$EXEC_A f=$FTCTL_A a=$AREA_A; else ex=$EXEC_B f=$FTCTL_B a=$AREA_B; fi
	# shellcheck disable=SC2086,SC2016
	$ex sh -c 'echo pid $$; exec "$0" "$@"' "$f" lock acquire "$a" "$res" \
		--host-id "$id" --hold "$@" >"$S/$name.out" 2>&1 &
	BG="$BG $!"
	echo $! >"$S/$name.lpid"
}

rpid() { sed -n 's/^pid \([0-9]*\)$/\1/p' "$S/$1.out"; }
on() { h=$1; shift; if [ "$h" = A ]; then $EXEC_A "$@"; else $EXEC_B "$@"; fi; }

wait_line()
{
	i=0
	until grep -qx "$2" "$S/$1.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le $(($3 * 10)) ] || fail "$1: no \"$2\" within $3 s"
		sleep 0.1
	done
}

wait_done()
{
	i=0
	p=$(cat "$S/$1.lpid")
	while kill -0 "$p" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le $(($2 * 10)) ] || fail "$1 still running after $2 s"
		sleep 0.1
	done
	RC=0
	wait "$p" || RC=$?
}

$EXEC_A "$FTCTL_A" lock init "$AREA_A" --force --hosts 8 --resources 64 \
	--renew-ms 100 --io-timeout-ms 200 --lease-ms 800 >"$S/init.out" 2>&1 || fail "init on A"
$EXEC_B "$FTCTL_B" lock show "$AREA_B" >"$S/show.out" 2>&1 || fail "B cannot read the area A wrote"

# Contention.
start a1 A vm1 1
wait_line a1 "acquired vm1" 20
start b1 B vm1 2 --timeout 3
wait_done b1 30
[ $RC = 3 ] || fail "B: exit $RC while A holds vm1, want 3"
on A kill -TERM "$(rpid a1)"
wait_done a1 20
[ $RC = 0 ] || fail "A: exit $RC after SIGTERM"

# Holder killed.
start a2 A vm2 1
wait_line a2 "acquired vm2" 20
start b2 B vm2 2 --timeout 60
sleep 1
on A kill -KILL "$(rpid a2)"
wait_line b2 "acquired vm2" 60
on B kill -TERM "$(rpid b2)"
wait_done b2 20

# Holder frozen past its lease.
start a3 A vm3 1
wait_line a3 "acquired vm3" 20
start b3 B vm3 2 --timeout 60
sleep 1
on A kill -STOP "$(rpid a3)"
wait_line b3 "acquired vm3" 60
on A kill -CONT "$(rpid a3)"
wait_done a3 20
[ $RC = 4 ] || fail "A: exit $RC after resuming, want 4 (lost)"
grep -qx "lost vm3" "$S/a3.out" || fail "A did not print lost"
on B kill -TERM "$(rpid b3)"
wait_done b3 20
echo "PASS: two hosts"
