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
# is shown again by b, in order: nothing is lost (output rule).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
BIN=$build/ftlogd
MKCERT=$top/ftlogd/ftlogd-mkcert
FTVMM=$build/ftvmm/ftvmm
FTCTL=$build/ftctl/ftctl
GUEST=${DEMO_GUEST:-$build/ftvmm/guests/ticker.elf}
export BIN MKCERT

step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces, /dev/kvm)"; exit 1; }
[ -r /dev/kvm ] || { echo "make demo needs /dev/kvm"; exit 1; }

step "kvm-ft demo: what exists and runs here"
say "record/replay FT of a 1-vCPU VM between two hosts over ftlogd (mutual TLS),"
say "failover of the secondary on host failure, output rule, on-disk lock."
say "Not yet: virtio net/disk, SMP checkpoint FT, respawn of a new secondary,"
say "the lock wired into go-live (shown as its own step below)."
"$FTCTL" module show | sed 's/^/   /'
if [ ! -e /dev/kvm_ft ]; then
	say "(this host's kernel cannot load modules; kvm_ft.ko is tested in a VM by make check)"
fi

. "$top/tests/logd/lib.sh"
KEEP_LOGS=${KEEP_LOGS:-}
setup_hosts
LOCK=$T/lockarea
"$FTCTL" lock init "$LOCK" > /dev/null

step "1. hosts a and b are up; FT logging links ftlog0/ftlog1 (10.77.1.0/24, 10.77.2.0/24)"
ip -n "$NA" -br addr show | grep ftlog | sed 's/^/   a: /'
ip -n "$NB" -br addr show | grep ftlog | sed 's/^/   b: /'

step "2. protect the VM: a takes the VM's lock, b replays, a records"
# The primary's host owns the VM's lock on the shared lock area while it
# runs as primary.
ip netns exec "$NA" "$FTCTL" lock acquire "$LOCK" vm1 --host-id 1 --hold > "$T/lock-a.out" 2>&1 &
LOCKA=$!
PIDS="$PIDS $LOCKA"
for _ in $(seq 1 300); do
	grep -q "acquired vm1" "$T/lock-a.out" && break
	sleep 0.05
done
grep -q "acquired vm1" "$T/lock-a.out" || { cat "$T/lock-a.out"; exit 1; }
say "a: acquired vm1 on the lock area"
ip netns exec "$NB" "$FTVMM" replay --ftlogd "$T/b.sock" --session vm1 --go-live \
	--live-timeout 1500 --serial "$T/sec.out" --stats "$T/sec.json" \
	"$GUEST" 2>"$T/sec.log" &
SEC=$!
PIDS="$PIDS $SEC"
ip netns exec "$NA" "$FTVMM" run --ftlogd "$T/a.sock" --session vm1 --peer b \
	--jitter 2000 --slice 5 --serial "$T/pri.out" --stats "$T/pri.json" \
	"$GUEST" 2>"$T/pri.log" &
PRI=$!
PIDS="$PIDS $PRI"
for _ in $(seq 1 500); do
	[ -f "$T/pri.out" ] && [ "$(wc -l < "$T/pri.out")" -ge 3 ] && break
	sleep 0.01
done

step "3. FT status while it runs"
"$FTCTL" session show vm1 socket "$T/a.sock" 2>&1 | sed 's/^/   a: /' || true
"$FTCTL" session show vm1 socket "$T/b.sock" 2>&1 | sed 's/^/   b: /' || true
say "the VM's console on a so far (released only once b ACKed the log):"
sed 's/^/     | /' "$T/pri.out"

step "4. host a fails: its VMM, its ftlogd and its lock holder are killed (SIGKILL)"
pkill -KILL -P "$PRI" ftvmm 2>/dev/null || kill -KILL "$PRI" 2>/dev/null || true
kill -KILL "$LOCKA" 2>/dev/null || true
for p in $PIDS; do
	case $p in "$SEC") ;; *) kill -KILL "$p" 2>/dev/null || true;; esac
done
pkill -KILL -f "ftlogd --config $T/a.conf" 2>/dev/null || true
shown=$(stat -c %s "$T/pri.out")
say "a had shown $shown bytes of console output"

step "5. b detects the failure and goes live"
rc=0
wait "$SEC" || rc=$?
grep -E "live|timeout|silent" "$T/sec.log" | tail -n 3 | sed 's/^/   b: /' || true
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

step "7. arbitration: b takes the VM's lock once a's lease has expired"
start=$(date +%s%N)
ip netns exec "$NB" "$FTCTL" lock acquire "$LOCK" vm1 --host-id 2 --timeout 30 | sed 's/^/   b: /'
say "b owns vm1 after $(( ($(date +%s%N) - start) / 1000000 )) ms (a's lease had to expire first)"
"$FTCTL" lock show "$LOCK" | sed 's/^/   /'
printf '\ndemo complete\n'
