#!/bin/sh
# net_failover.sh FTVMM GUEST_DIR UDP_ECHO - network failover through
# ftlogd, on two hosts (network namespaces a and b, tests/logd/lib.sh).
# The netecho guest runs as the primary on a, its secondary replays live
# on b; each VMM's tap is in its host's bridge on the VM network
# (setup_vm_network: both bridges joined through a third namespace c,
# where the client, udp_echo, runs). First lockstep: echoes answered by
# the primary, replayed exactly on b. Then, while the client is sending
# sequence-numbered echoes, the primary is killed (SIGKILL: its held
# replies and its tap go with it): the secondary's log goes silent, it
# goes live, sends the replies the primary held and a
# RARP announcement (so the bridges learn the guest's MAC on b's side),
# and answers the rest. udp_echo's resends bridge the gap: nothing may
# be lost or corrupted, and the guest's reply sequence numbers must keep
# increasing across the failover (the guest's state moved with it).
# 3. The same failover with 2 vCPUs (checkpoint epochs, SMP in
# Documentation/ftvmm.md): the secondary goes live from its last complete
# epoch and sends that epoch's held replies the primary had not reported
# sent.
FTVMM=$1 G=$2 ECHO=$3
FTCTL=${FTCTL:-$BIN/../ftctl/ftctl}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm unavailable"; exit 77; }
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
[ -x "$BIN/ftlogd" ] || { echo "SKIP: ftlogd not built ($BIN)"; exit 77; }
[ -x "$FTCTL" ] || { echo "SKIP: ftctl not built ($FTCTL)"; exit 77; }
. "$(dirname "$0")/../../tests/logd/lib.sh"
setup_hosts
setup_vm_network

secondary() { # SESSION [FTVMM OPTION...]
	s=$1
	shift
	ip netns exec "$NB" "$FTVMM" replay --ftlogd "$T/b.sock" --session "$s" --go-live \
		--live-timeout 1500 "$@" --net tapb --serial "$T/$s.sec.out" --stats "$T/$s.sec.json" \
		"$G/netecho.elf" 2>"$T/$s.sec.log" &
	SEC=$!
	PIDS="$PIDS $SEC"
	bridge_tap "$NB" tapb >/dev/null 2>&1 &
}
primary() { # SESSION [FTVMM OPTION...]
	s=$1
	shift
	ip netns exec "$NA" "$FTVMM" run --ftlogd "$T/a.sock" --session "$s" --peer b "$@" \
		--net tapa --serial "$T/$s.pri.out" --stats "$T/$s.pri.json" "$G/netecho.elf" \
		2>"$T/$s.pri.log" &
	PRI=$!
	PIDS="$PIDS $PRI"
	bridge_tap "$NA" tapa || fail "cannot bridge tapa: $(cat "$T/$s.pri.log")"
	wait_bridged "$NB" tapb
}
client() { ip netns exec "$NC" "$ECHO" --to 192.168.77.2 "$@"; }
quit_guest() { client --count 0 --quit-port 9 >/dev/null 2>&1 || true; }

# 1. Lockstep: echoes answered by the primary, the secondary replays them
# exactly and sends nothing.
secondary net1
primary net1
client --count 200 --timeout-ms 2000 --json >"$T/net1.echo" ||
	fail "echoes through the primary: $(cat "$T/net1.echo")"
quit_guest
rc=0
wait $PRI || rc=$?
[ $rc = 1 ] || fail "primary status $rc: $(cat "$T/net1.pri.log")"
rc=0
wait $SEC || rc=$?
[ $rc = 1 ] || fail "secondary status $rc: $(cat "$T/net1.sec.log")"
cmp -s "$T/net1.pri.out" "$T/net1.sec.out" || fail "the secondary's console differs"
grep -q '"went_live_at": 0' "$T/net1.sec.json" || fail "the secondary went live in a clean run"
echo "ok: 200 echoes under FT, the secondary replayed them exactly"
# The session's output figures (ftlogd, from the primary's producer
# page) count every console byte and every frame, each held and released.
cb=$(num console_bytes <"$T/net1.pri.json")
fr=$(sed -n '/"net"/,$p' "$T/net1.pri.json" | num released)
[ "$fr" -ge 200 ] || fail "the primary released $fr frames for 200 echoes"
ip netns exec "$NA" "$FTCTL" -j session show net1 socket "$T/a.sock" >"$T/net1.stat" ||
	fail "ftctl session show"
[ "$(num outputs_released <"$T/net1.stat")" = $((cb + fr)) ] &&
	[ "$(num outputs_held <"$T/net1.stat")" = 0 ] ||
	fail "session outputs: want $cb console bytes + $fr frames released: $(cat "$T/net1.stat")"
echo "ok: the session counts $cb console bytes and $fr frames held and released"

# failover SESSION [FTVMM OPTION...]: a failover in the middle of a stream
# of echoes. udp_echo resends a request after 200 ms, up to 25 times (5 s:
# go-live takes 1.5 s).
COUNT=600
failover() {
	secondary "$@"
	primary "$@"
	client --count "$COUNT" --interval-us 2000 --timeout-ms 200 --retries 25 --json \
		>"$T/$1.echo" &
	CL=$!
	PIDS="$PIDS $CL"
	sleep 0.5
	kill -KILL "$PRI"
	rc=0
	client_rc=0
	wait $CL || client_rc=$?
	quit_guest
	wait $SEC || rc=$?
	[ $rc = 1 ] || fail "secondary status $rc after failover: $(cat "$T/$1.sec.log")"
	e=$(cat "$T/$1.echo")
	[ "$client_rc" = 0 ] || fail "echoes across the failover (status $client_rc): $e"
	[ "$(echo "$e" | num received)" = "$COUNT" ] || fail "not all $COUNT answered: $e"
	[ "$(echo "$e" | num lost)" = 0 ] && [ "$(echo "$e" | num bad)" = 0 ] &&
		[ "$(echo "$e" | num seq_errors)" = 0 ] || fail "loss or corruption: $e"
	n=$(stat -c %s "$T/$1.pri.out")
	head -c "$n" "$T/$1.sec.out" | cmp -s - "$T/$1.pri.out" ||
		fail "the primary printed console output the secondary did not"
}

failover net2
went=$(grep went_live_at "$T/net2.sec.json" | tr -dc 0-9)
[ "$went" != 0 ] || fail "the secondary did not go live"
e=$(cat "$T/net2.echo")
echo "ok: failover at position $went during $COUNT echoes: none lost, sequence continued" \
	"($(echo "$e" | num retries) resends, $(echo "$e" | num duplicates) duplicates)"

failover net3 --vcpus 2
grep -q "going live from epoch" "$T/net3.sec.log" ||
	fail "the 2-vCPU secondary did not go live: $(cat "$T/net3.sec.log")"
e=$(cat "$T/net3.echo")
echo "ok: 2 vCPUs: $(grep -o 'going live from epoch [0-9]*' "$T/net3.sec.log") during" \
	"$COUNT echoes: none lost, sequence continued ($(echo "$e" | num retries) resends," \
	"$(echo "$e" | num duplicates) duplicates, $(sed -n '/"net"/,$p' "$T/net3.sec.json" |
	num resent_at_go_live) held replies sent at go-live)"
echo "4 passed, 0 failed"
