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
# while it is primary; b goes live only after winning it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
BIN=$build/ftlogd
MKCERT=$top/ftlogd/ftlogd-mkcert
FTVMM=$build/ftvmm/ftvmm
FTCTL=$build/ftctl/ftctl
GUEST=${DEMO_GUEST:-$build/ftvmm/guests/clock.elf}
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
say "lock, output rule. Not yet: virtio net/disk, SMP checkpoint FT, respawn"
say "of a new secondary."
"$FTCTL" module show | sed 's/^/   /'
if [ ! -e /dev/kvm_ft ]; then
	say "(this host's kernel cannot load modules; kvm_ft.ko is tested in a VM by make check)"
fi

. "$top/tests/logd/lib.sh"
KEEP_LOGS=${KEEP_LOGS:-}
setup_hosts
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
for p in $PIDS; do
	case $p in "$SEC") ;; *) kill -KILL "$p" 2>/dev/null || true;; esac
done
pkill -KILL -f "ftlogd --config $T/a.conf" 2>/dev/null || true
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
printf '\ndemo complete\n'
