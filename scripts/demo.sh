#!/bin/sh
# demo.sh - `make demo`: kvm-ft end to end on this machine, for real.
#
# Two hosts, a (primary) and b (secondary), are network namespaces joined
# by two veth pairs: the dedicated FT logging links. Each runs ftlogd with
# a host certificate from a cluster CA made here (mutual TLS). A VM is
# protected: ftvmm records it on a, ftlogd ships its log to b, ftvmm on b
# replays it in lockstep. Then host a dies (its VMM and its ftlogd are
# killed with SIGKILL); b notices the silence, goes live and the VM runs
# to its end there. Everything the VM showed the world before the failure
# is shown again by b, in order: nothing is lost (output rule). Who may
# run the VM is arbitrated by its lock on a shared lock area: a owns it
# while it is primary; b goes live only after winning it. Then a second
# VM, a UDP echo service on virtio-net, is protected the same way and a
# fails again while a client on the VM network is sending it requests:
# every request is answered, and the VM's reply sequence numbers go on
# increasing on b (its state moved, nothing was replayed twice). Last, a
# service that is not a VM: fthbd keeps a SQLite service on one of two
# servers (tests/hb/failover.sh, narrated).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
BIN=$build/ftlogd
MKCERT=$top/ftlogd/ftlogd-mkcert
FTVMM=$build/ftvmm/ftvmm
FTCTL=$build/ftctl/ftctl
GUEST=${DEMO_GUEST:-$build/ftvmm/guests/clock.elf}
NETGUEST=$build/ftvmm/guests/netecho.elf
ECHO=$build/ftvmm/tools/udp_echo
export BIN MKCERT

step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }

# As a ctest (DEMO_AS_TEST=1) a missing prerequisite is a skip (77).
missing=1
[ -n "${DEMO_AS_TEST:-}" ] && missing=77
[ "$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces, /dev/kvm)"; exit $missing; }
[ -r /dev/kvm ] || { echo "make demo needs /dev/kvm"; exit $missing; }

step "kvm-ft demo: what exists and runs here"
say "record/replay FT of a 1-vCPU VM between two hosts over ftlogd (mutual TLS),"
say "failover to the secondary on host failure, arbitrated by the VM's on-disk"
say "lock, output rule; then a network service VM (virtio-net) whose clients"
say "see no loss across the failover; then a service that is not a VM (fthbd)"
say "failing over between two servers. Also there, not shown here: virtio-blk,"
say "SMP by checkpoint epochs (make check). Not yet: Linux guests, live migration,"
say "respawn of a new secondary."
"$FTCTL" module show | sed 's/^/   /'
if [ ! -e /dev/kvm_ft ]; then
	say "(this host's kernel cannot load modules; kvm_ft.ko is tested in a VM by make check)"
fi

. "$top/tests/logd/lib.sh"
KEEP_LOGS=${KEEP_LOGS:-}
setup_hosts
# shellcheck disable=SC2086
set -- $PIDS
FTLOGD_A=$1 # lib.sh starts a's ftlogd first
# The shared lock area (a file both namespaces see, as a LUN would be).
# Short timeouts: a dead holder's lease lapses after 1.3 s.
LOCK=$T/lockarea
"$FTCTL" lock init "$LOCK" --renew-ms 100 --io-timeout-ms 200 --lease-ms 600 > /dev/null

step "1. hosts a and b are up; FT logging links ftlog0/ftlog1 (10.77.1.0/24, 10.77.2.0/24)"
ip -n "$NA" -br addr show | grep ftlog | sed 's/^/   a: /'
ip -n "$NB" -br addr show | grep ftlog | sed 's/^/   b: /'

step "2. protect the VM: b replays, a takes the VM's lock and records"
ip netns exec "$NB" "$FTVMM" replay --ftlogd "$T/b.sock" --session vm1 --go-live \
	--live-timeout 1000 --lock "$LOCK" --host-id 2 --serial "$T/sec.out" \
	--stats "$T/sec.json" "$GUEST" 2>"$T/sec.log" &
SEC=$!
PIDS="$PIDS $SEC"
ip netns exec "$NA" "$FTVMM" run --ftlogd "$T/a.sock" --session vm1 --peer b \
	--jitter 2000 --slice 5 --lock "$LOCK" --host-id 1 --serial "$T/pri.out" \
	--stats "$T/pri.json" "$GUEST" 2>"$T/pri.log" &
PRI=$!
PIDS="$PIDS $PRI"
for _ in $(seq 1 500); do
	[ -f "$T/pri.out" ] && [ "$(wc -l < "$T/pri.out")" -ge 10 ] && break
	sleep 0.01
done

step "3. FT status while it runs"
grep "owns the lock" "$T/pri.log" | sed 's/^/   a: /' || true
"$FTCTL" lock show "$LOCK" | grep "^resource" | sed 's/^/   lock area: /' || true
"$FTCTL" session show vm1 socket "$T/a.sock" 2>&1 | sed 's/^/   a: /' || true
"$FTCTL" session show vm1 socket "$T/b.sock" 2>&1 | sed 's/^/   b: /' || true
say "the VM's console on a so far (released only once b ACKed the log):"
sed 's/^/     | /' "$T/pri.out"

step "4. host a fails: its VMM (and with it its lock renewals) and its ftlogd are killed (SIGKILL)"
pkill -KILL -P "$PRI" ftvmm 2>/dev/null || kill -KILL "$PRI" 2>/dev/null || true
killed=$(date +%s%N)
kill -KILL "$FTLOGD_A" 2>/dev/null || true
wait "$FTLOGD_A" 2>/dev/null || true
shown=$(stat -c %s "$T/pri.out")
say "a had shown $shown bytes of console output"

step "5. b detects the failure, wins the VM's lock once a's lease has lapsed, goes live"
for _ in $(seq 1 600); do
	grep -q "owns the lock" "$T/sec.log" && break
	sleep 0.01
done
say "b owned the VM's lock $(( ($(date +%s%N) - killed) / 1000000 )) ms after a was killed:"
"$FTCTL" lock show "$LOCK" | grep -E "^(host [12]|resource) " | sed 's/^/   lock area: /'
rc=0
wait "$SEC" || rc=$?
grep -E "lock|live|timeout|silent" "$T/sec.log" | tail -n 4 | sed 's/^/   b: /' || true
went=$(grep -o '"went_live_at": *[0-9]*' "$T/sec.json" | tr -dc 0-9)
say "secondary went live at log position $went; the VM ran to its end on b (exit status $rc)"
say "the VM's console on b:"
sed 's/^/     | /' "$T/sec.out"

step "6. no loss"
if head -c "$shown" "$T/sec.out" | cmp -s - "$T/pri.out"; then
	say "everything the VM showed on a is shown on b, byte for byte, in order: OK"
else
	say "MISMATCH: b's output does not continue a's"; exit 1
fi
[ "$went" != 0 ] || say "(the VM finished before a was killed: no failover happened this time)"

[ "$rc" = 1 ] || { say "b's VM did not end cleanly (status $rc)"; exit 1; }

if [ ! -c /dev/net/tun ]; then
	say "(no /dev/net/tun here: the network service part is left out)"
	printf '\ndemo complete\n'
	exit 0
fi
step "7. a network service: the netecho VM (UDP echo on virtio-net) protected on a, b its secondary"
rm -f "$T/a.sock"
start_ftlogd a "$NA"
FTLOGD_A=${PIDS##* }
setup_vm_network
ip netns exec "$NB" "$FTVMM" replay --ftlogd "$T/b.sock" --session vm2 --go-live \
	--live-timeout 1000 --net tapb --serial "$T/net.sec.out" --stats "$T/net.sec.json" \
	"$NETGUEST" 2>"$T/net.sec.log" &
SEC=$!
PIDS="$PIDS $SEC"
bridge_tap "$NB" tapb >/dev/null 2>&1 &
ip netns exec "$NA" "$FTVMM" run --ftlogd "$T/a.sock" --session vm2 --peer b --net tapa \
	--serial "$T/net.pri.out" --stats "$T/net.pri.json" "$NETGUEST" 2>"$T/net.pri.log" &
PRI=$!
PIDS="$PIDS $PRI"
bridge_tap "$NA" tapa || { say "cannot bridge a's tap: $(cat "$T/net.pri.log")"; exit 1; }
wait_bridged "$NB" tapb
say "the VM network: a bridge on a and on b, joined through a third namespace c where"
say "the client runs (192.168.77.1); the VM is 192.168.77.2, its tap on a in a's bridge"
say "and the replayer's tap on b in b's bridge (b sends nothing while it replays)"
ip netns exec "$NC" "$ECHO" --to 192.168.77.2 --count 1000 --interval-us 2000 \
	--timeout-ms 200 --retries 25 >"$T/net.echo" 2>&1 &
CL=$!
sleep 0.7
"$FTCTL" session show vm2 socket "$T/a.sock" 2>&1 | sed 's/^/   a: /' || true

step "8. host a fails while the client is sending 1000 echo requests (one every 2 ms, resent after 200 ms)"
pkill -KILL -P "$PRI" ftvmm 2>/dev/null || kill -KILL "$PRI" 2>/dev/null || true
kill -KILL "$FTLOGD_A" 2>/dev/null || true
crc=0
wait "$CL" || crc=$?
ip netns exec "$NC" "$ECHO" --to 192.168.77.2 --count 0 --quit-port 9 >/dev/null 2>&1 || true
rc=0
wait "$SEC" || rc=$?
grep -E "live|timeout|silent" "$T/net.sec.log" | tail -n 2 | sed 's/^/   b: /' || true
went=$(grep -o '"went_live_at": *[0-9]*' "$T/net.sec.json" | tr -dc 0-9)
say "the client saw:"
sed 's/^/     | /' "$T/net.echo"
[ "$went" != 0 ] || { say "b did not go live"; exit 1; }
[ "$crc" = 0 ] || { say "requests were lost or answered wrongly (udp_echo status $crc)"; exit 1; }
say "b went live at log position $went; every request was answered, none corrupted, and the"
say "VM's reply sequence numbers kept increasing across the failover: OK"
[ "$rc" = 1 ] || { say "b's VM did not end cleanly (status $rc)"; exit 1; }

step "9. service failover (fthbd): a SQLite service on two servers, one public address"
say "servers a and b (namespaces) run fthbd; a is active: its service writes a SQLite"
say "database (WAL) through fthbd's interception, each update stored by b before the"
say "write returns (sync mode); clients reach the service at 10.78.9.10 only. a and"
say "everything in it is killed mid-write; b wins the service's on-disk lock, applies"
say "its safe queue, takes the address and restarts the service from the replica."
if [ -e /dev/fuse ] || modprobe fuse 2>/dev/null; then
	hrc=0
	BIN=$build/fthbd FTCTL=$FTCTL sh "$top/tests/hb/failover.sh" > "$T/hb.out" 2>&1 || hrc=$?
	sed 's/^/   /' "$T/hb.out"
	[ "$hrc" = 0 ] || { say "the service failover failed (status $hrc)"; exit 1; }
	say "every transaction the client saw acknowledged is in b's database: OK"
else
	say "(no /dev/fuse on this host: the service failover is not shown; make check skips it too)"
fi
printf '\ndemo complete\n'
