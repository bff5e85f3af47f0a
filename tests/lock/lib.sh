# lib.sh - shared by the ftctl lock end-to-end tests (sourced).
# Usage in a test: . lib.sh; setup FTCTL; ... ; pass
# Several "hosts" are ftctl processes on this machine with distinct
# --host-id values, sharing one lock area file through O_DIRECT.
set -eu

FTCTL=""
WORK=""
PIDS=""

cleanup()
{
	for p in $PIDS; do
		kill -CONT "$p" 2>/dev/null || true
		kill -KILL "$p" 2>/dev/null || true
	done
	[ -n "$WORK" ] && rm -rf "$WORK"
}

fail()
{
	echo "FAIL: $*"
	for f in "$WORK"/*.out "$WORK"/*.err; do
		[ -s "$f" ] && { echo "--- $f"; cat "$f"; }
	done
	exit 1
}

skip() { echo "SKIP: $*"; exit 77; }
pass() { echo "PASS"; exit 0; }

# setup FTCTL: a scratch dir and a lock area with short timeouts
# (renew 100 ms, io timeout 200 ms, lease 800 ms => host-dead ~1.5 s).
setup()
{
	FTCTL=$1
	[ -x "$FTCTL" ] || fail "no ftctl at $FTCTL"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvmft-lock.XXXXXX")
	trap cleanup EXIT
	AREA=$WORK/area
	"$FTCTL" lock init "$AREA" --hosts 8 --resources 64 \
		--renew-ms 100 --io-timeout-ms 200 --lease-ms 800 >"$WORK/init.out" 2>&1 ||
		{ grep -q "O_DIRECT" "$WORK/init.out" && skip "no O_DIRECT on $WORK"; fail "lock init"; }
	DEAD_MS=$("$FTCTL" -j lock show "$AREA" | sed -n 's/.*"host_dead_ms":\([0-9]*\).*/\1/p')
	[ -n "$DEAD_MS" ] || fail "show -j has no host_dead_ms"
}

# hold NAME HOSTID RESOURCE [extra args]: start a holder in the background;
# its pid goes to $NAME.pid, output to $NAME.out/.err.
hold()
{
	name=$1 id=$2 res=$3
	shift 3
	"$FTCTL" lock acquire "$AREA" "$res" --host-id "$id" --hold "$@" \
		>"$WORK/$name.out" 2>"$WORK/$name.err" &
	echo $! >"$WORK/$name.pid"
	PIDS="$PIDS $!"
}

pid_of() { cat "$WORK/$1.pid"; }

# wait_line NAME LINE SECONDS: wait until NAME's stdout has LINE.
wait_line()
{
	i=0
	while ! grep -qx "$2" "$WORK/$1.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le $(($3 * 20)) ] || fail "$1 did not print \"$2\" within $3 s"
		sleep 0.05
	done
}

# wait_exit NAME SECONDS: wait for NAME to exit; its status in $RC.
wait_exit()
{
	p=$(pid_of "$1")
	i=0
	while kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" | cut -c1)" != Z ]; do
		i=$((i + 1))
		[ $i -le $(($2 * 20)) ] || fail "$1 still running after $2 s"
		sleep 0.05
	done
	RC=0
	wait "$p" || RC=$?
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
