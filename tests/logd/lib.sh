# lib.sh - helpers for the ftlogd end-to-end tests: two hosts a and b as
# network namespaces joined by two veth pairs (the two FT logging paths,
# ftlog0: 10.77.1.0/24 and ftlog1: 10.77.2.0/24), a cluster CA, one
# ftlogd per host; optionally a VM network with a client namespace c. Everything is named after the test's pid and removed
# at exit, also on failure. Source it, then call setup_hosts.
#
# Needs: BIN (dir with ftlogd, ftlog-gen, ftlog-check), MKCERT.
set -eu

SKIP=77
T=$(mktemp -d /tmp/ftlogd-test.XXXXXX)
ID=$$
NA=fta$ID
NB=ftb$ID
NC=ftc$ID # the VM network's clients (setup_vm_network)
PIDS=""

cleanup() {
	rc=$?
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	# What a backgrounded helper started in a host (its PIDS entry is the
	# subshell, not the program) ends with the host.
	for ns in $NA $NB $NC; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
	done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	ip netns del "$NA" 2>/dev/null || true
	ip netns del "$NB" 2>/dev/null || true
	ip netns del "$NC" 2>/dev/null || true
	# A sanitizer build: any report from a daemon fails the test.
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

need_root() {
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit $SKIP; }
	ip netns add "$NA" 2>/dev/null || { echo "SKIP: cannot create network namespaces"; exit $SKIP; }
	ip netns add "$NB"
	ip -n "$NA" link set lo up
	ip -n "$NB" link set lo up
}

# link IDX: veth pair ftlogIDX between a (10.77.IDX+1.1) and b (.2)
add_link() {
	i=$1 net=$(( $1 + 1 ))
	ip link add "fa$i$ID" type veth peer name "fb$i$ID"
	ip link set "fa$i$ID" netns "$NA" name "ftlog$i"
	ip link set "fb$i$ID" netns "$NB" name "ftlog$i"
	ip -n "$NA" addr add "10.77.$net.1/24" dev "ftlog$i"
	ip -n "$NB" addr add "10.77.$net.2/24" dev "ftlog$i"
	ip -n "$NA" link set "ftlog$i" up
	ip -n "$NB" link set "ftlog$i" up
}

# conf HOST SELF_OCTET PEER PEER_OCTET [extra lines...]: config for one host
conf() {
	h=$1 me=$2 peer=$3 them=$4
	shift 4
	{
		echo "host_name = $h"
		echo "ca = $T/ca/ca.pem"
		echo "cert = $T/$h.pem"
		echo "key = $T/$h.key"
		echo "control_socket = $T/$h.sock"
		echo "heartbeat_interval_ms = ${HB_INTERVAL:-100}"
		echo "heartbeat_timeout_ms = ${HB_TIMEOUT:-1000}"
		echo "connect_timeout_ms = 500"
		for l in 0 1; do echo "listen = 10.77.$((l + 1)).$me:7301 dev ftlog$l"; done
		for x in "$@"; do echo "$x"; done
		echo "[peer $peer]"
		for l in $(seq 0 $(( ${PATHS:-2} - 1 ))); do
			echo "path = 10.77.$((l + 1)).$me dev ftlog$l -> 10.77.$((l + 1)).$them:7301"
		done
	} >"$T/$h.conf"
}

start_ftlogd() { # HOST NETNS
	ip netns exec "$2" "$BIN/ftlogd" --config "$T/$1.conf" 2>"$T/$1.log" &
	PIDS="$PIDS $!"
	for _ in $(seq 1 200); do
		[ -S "$T/$1.sock" ] && return 0
		sleep 0.05
	done
	fail "ftlogd on $1 did not start"
}

setup_hosts() {
	need_root
	add_link 0
	add_link 1
	"$MKCERT" ca "$T/ca"
	"$MKCERT" host "$T/ca" "$T" a
	"$MKCERT" host "$T/ca" "$T" b
	conf a 1 b 2 "$@"
	conf b 2 a 1 "$@"
	start_ftlogd a "$NA"
	start_ftlogd b "$NB"
}

# event_field HOST TYPE: the message of HOST's last event of TYPE
event_msg() { grep ": $2: " "$T/$1.log" | tail -n 1 | sed "s/.*: $2: //"; }

# gen/check: the diagnostic primary VMM on a, replaying VMM on b
gen() { ip netns exec "$NA" "$BIN/ftlog-gen" --socket "$T/a.sock" --peer b "$@"; }
check() { ip netns exec "$NB" "$BIN/ftlog-check" --socket "$T/b.sock" "$@"; }

# num FIELD < JSON: the first number given for "FIELD" (one per line)
num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" | head -n 1; }

# count_events HOST TYPE: events of that type so far in HOST's log
count_events() { grep -c ": $2: " "$T/$1.log" || true; }

# wait_event HOST TYPE N TIMEOUT_S: until HOST logged N events of TYPE
wait_event() {
	for _ in $(seq 1 $(( $4 * 20 ))); do
		[ "$(count_events "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.05
	done
	return 1
}

# setup_vm_network: the network the protected VMs' taps are on, as a VM
# network spanning both hosts would be: a bridge vmbr on a and on b,
# each joined by a veth pair to the bridge of a third namespace, $NC,
# where the VMs' clients run (address 192.168.77.1/24). No loop: a and b
# reach each other only through c. After setup_hosts.
setup_vm_network() {
	ip netns add "$NC"
	ip -n "$NC" link set lo up
	ip -n "$NC" link add vmbr type bridge
	for h in a b; do
		ns=$NA
		[ $h = b ] && ns=$NB
		ip link add "v${h}h$ID" type veth peer name "v${h}c$ID"
		ip link set "v${h}h$ID" netns "$ns" name vmnet
		ip link set "v${h}c$ID" netns "$NC" name "vm$h"
		ip -n "$ns" link add vmbr type bridge
		ip -n "$ns" link set vmnet master vmbr up
		ip -n "$ns" link set vmbr up
		ip -n "$NC" link set "vm$h" master vmbr up
	done
	ip -n "$NC" link set vmbr up
	ip -n "$NC" addr add 192.168.77.1/24 dev vmbr
}

# bridge_tap NETNS TAP: once a VMM made TAP (ftvmm --net), put it in the
# host's vmbr. A replayer makes its tap only when the primary's log
# starts, so callers may run this in the background and check with
# wait_bridged.
bridge_tap() {
	for _ in $(seq 1 500); do
		ip -n "$1" link show "$2" >/dev/null 2>&1 && break
		sleep 0.02
	done
	ip -n "$1" link set "$2" master vmbr up
}
wait_bridged() { # NETNS TAP
	for _ in $(seq 1 250); do
		ip -n "$1" link show "$2" 2>/dev/null | grep -q "master vmbr" && return 0
		sleep 0.02
	done
	fail "$2 did not come up in the VM network's bridge"
}
