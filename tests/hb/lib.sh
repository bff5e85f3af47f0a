# lib.sh - helpers for the fthbd end-to-end tests: servers a and b as
# network namespaces joined by a dedicated channel link (hb0,
# 10.78.1.0/24), and a public network: a bridge in a third namespace c,
# where the clients run (10.78.9.1/24), with a veth to each server's pub0
# (a 10.78.9.2, b 10.78.9.3). The public identity is 10.78.9.10/24; c is
# the servers' ping target. The lock area is a file both servers open.
# Everything is named after the test's pid and removed at exit.
#
# Needs: BIN (dir with fthbd, fthb-sqlsvc), MKCERT, FTCTL.
set -eu

SKIP=77
T=$(mktemp -d /tmp/fthbd-test.XXXXXX)
ID=$$
NA=hba$ID
NB=hbb$ID
NC=hbc$ID
PUB=10.78.9.10
PIDS=""

cleanup() {
	rc=$?
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for ns in $NA $NB $NC; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
	done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	for ns in $NA $NB $NC; do ip netns del "$ns" 2>/dev/null || true; done
	if grep -l -E "Sanitizer|runtime error:" "$T"/*.log 2>/dev/null; then
		cat "$T"/*.log >&2
		rc=1
	fi
	if [ "${KEEP_LOGS:-}" ]; then echo "logs in $T"; else rm -rf "$T"; fi
	exit $rc
}
trap cleanup EXIT INT TERM

fail() {
	echo "FAIL: $*" >&2
	for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; } >&2; done
	exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

need_root() {
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, FUSE)"; exit $SKIP; }
	[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit $SKIP; }
	ip netns add "$NA" 2>/dev/null || { echo "SKIP: cannot create network namespaces"; exit $SKIP; }
	ip netns add "$NB"
	ip netns add "$NC"
	for ns in $NA $NB $NC; do ip -n "$ns" link set lo up; done
}

setup_net() {
	ip link add "ha$ID" type veth peer name "hb$ID"
	ip link set "ha$ID" netns "$NA" name hb0
	ip link set "hb$ID" netns "$NB" name hb0
	ip -n "$NA" addr add 10.78.1.1/24 dev hb0
	ip -n "$NB" addr add 10.78.1.2/24 dev hb0
	ip -n "$NA" link set hb0 up
	ip -n "$NB" link set hb0 up
	ip -n "$NC" link add br0 type bridge
	ip -n "$NC" link set br0 up
	ip -n "$NC" addr add 10.78.9.1/24 dev br0
	n=2
	for h in a b; do
		ns=$NA
		[ $h = b ] && ns=$NB
		ip link add "p${h}$ID" type veth peer name "c${h}$ID"
		ip link set "p${h}$ID" netns "$ns" name pub0
		ip link set "c${h}$ID" netns "$NC" name "to$h"
		ip -n "$NC" link set "to$h" master br0 up
		ip -n "$ns" addr add "10.78.9.$n/24" dev pub0
		ip -n "$ns" link set pub0 up
		n=$((n + 1))
	done
}

# conf HOST PEER ROLE HOST_ID MY_OCTET PEER_OCTET
conf() {
	mkdir -p "$T/$1/data"
	cat >"$T/$1.conf" <<EOC
name = $1
peer_name = $2
service = db
role = $3
host_id = $4
ca = $T/ca/ca.pem
cert = $T/$1.pem
key = $T/$1.key
listen = 10.78.1.$5:7600 dev hb0
peer = 10.78.1.$6:7600
control_socket = $T/$1.sock
data_dir = $T/$1/data
safe_queue = $T/$1/safe.q
app = exec $BIN/fthb-sqlsvc serve $T/$1/data/t.db $PUB 7400
public_address = $PUB/24 dev pub0
ping = 10.78.9.1
mode = ${MODE:-sync}
heartbeat_interval_ms = 50
timeout_ms = 1000
acquire_timeout_ms = 3000
lock_area = $T/lock.area
EOC
}

# setup: network, certificates, lock area, configs; a active, b passive
setup() {
	need_root
	setup_net
	"$MKCERT" ca "$T/ca"
	"$MKCERT" host "$T/ca" "$T" a
	"$MKCERT" host "$T/ca" "$T" b
	"$FTCTL" lock init "$T/lock.area" --hosts 4 --resources 8 --renew-ms 100 \
		--io-timeout-ms 200 --lease-ms 600 >"$T/init.out" 2>&1 ||
		{ grep -q "O_DIRECT" "$T/init.out" && { echo "SKIP: no O_DIRECT on $T"; exit $SKIP; }; fail "lock init: $(cat "$T/init.out")"; }
	conf a b active 1 1 2
	conf b a passive 2 2 1
}

start() { # HOST NETNS
	ip netns exec "$2" "$BIN/fthbd" --config "$T/$1.conf" 2>>"$T/$1.log" &
	PIDS="$PIDS $!"
}

show() { "$FTCTL" -j service show db socket "$T/$1.sock" 2>/dev/null || true; }

# wait_for HOST PATTERN SECONDS: until HOST's status JSON matches
wait_for() {
	for _ in $(seq 1 $(( $3 * 20 ))); do
		show "$1" | grep -q "$2" && return 0
		sleep 0.05
	done
	return 1
}

# wait_log HOST PATTERN SECONDS
wait_log() {
	for _ in $(seq 1 $(( $3 * 20 ))); do
		grep -q "$2" "$T/$1.log" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

acked() { [ -f "$T/acked" ] && wc -l <"$T/acked" || echo 0; }

# wait_acked N SECONDS
wait_acked() {
	for _ in $(seq 1 $(( $2 * 20 ))); do
		[ "$(acked)" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

client() { # SECONDS
	ip netns exec "$NC" "$BIN/fthb-sqlsvc" client $PUB 7400 "$T/acked" "$1" 2>"$T/client.log" &
	CLIENT=$!
	PIDS="$PIDS $CLIENT"
}

has_pub() { ip -n "$1" -4 addr show dev pub0 | grep -q "inet $PUB/"; }

# start_pair: a active and serving, b passive and synchronised
start_pair() {
	start a "$NA"
	wait_for a '"role":"active"' 15 || fail "a did not become active"
	start b "$NB"
	wait_for b '"synchronised":true' 15 || fail "b did not synchronise: $(show b)"
}

# kill_active: server a dies: every process in it killed with SIGKILL,
# its links dead with it (a crash of fthbd alone on a live server is not
# this case; see Documentation/fthbd.md). Then the acknowledgement count
# once replies already on their way have landed.
kill_active() {
	for p in $(ip netns pids "$NA"); do kill -9 "$p" 2>/dev/null || true; done
	ip -n "$NA" link set pub0 down
	ip -n "$NA" link set hb0 down
	sleep 0.2
	before=$(acked)
}
