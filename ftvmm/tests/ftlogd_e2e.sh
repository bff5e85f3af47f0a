#!/bin/sh
# ftlogd_e2e.sh FTVMM GUEST_DIR - FT end to end on two hosts (network
# namespaces, two ftlogd daemons, tests/logd/lib.sh): the primary ftvmm
# records the ticker into its ring, ftlogd ships it, the secondary ftvmm
# replays live from its ring. Then the primary is killed mid-run: the
# secondary goes live and finishes, and everything the primary printed
# (held until ACKed) is a prefix of what the secondary printed. The
# primary's session statistics (ftctl, Prometheus) count every console
# byte as one output held and released. Then the same failover with
# blkrmw and a disk on each host: the secondary's disk ends as a run
# without failover leaves it, also when both hosts share one disk file.
# Then the SMP worker on 2 vCPUs by epochs:
# lockstep and failover.
FTVMM=$1 G=$2
FTCTL=${FTCTL:-$BIN/../ftctl/ftctl}
[ -r /dev/kvm ] || { echo "SKIP: /dev/kvm unavailable"; exit 77; }
[ -x "$BIN/ftlogd" ] || { echo "SKIP: ftlogd not built ($BIN)"; exit 77; }
[ -x "$FTCTL" ] || { echo "SKIP: ftctl not built ($FTCTL)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: needs python3"; exit 77; }
# lib.sh sets -eu: statuses are collected with `|| rc=$?`.
. "$(dirname "$0")/../../tests/logd/lib.sh"
setup_hosts "metrics_listen = 127.0.0.1:9464"

GUEST=ticker	# the guest, and options for both sides (a disk)
secondary() { # SESSION TAG [OPTION...]
	s=$1 tag=$2
	shift 2
	ip netns exec "$NB" "$FTVMM" replay --ftlogd "$T/b.sock" --session "$s" --go-live \
		--live-timeout 1500 --serial "$T/$tag.sec.out" --stats "$T/$tag.sec.json" \
		"$@" "$G/$GUEST.elf" 2>"$T/$tag.sec.log" &
	SEC=$!
	PIDS="$PIDS $SEC"
}
primary() { # SESSION TAG [OPTION...]
	s=$1 tag=$2
	shift 2
	ip netns exec "$NA" "$FTVMM" run --ftlogd "$T/a.sock" --session "$s" --peer b \
		--ring-bytes 65536 --jitter 2000 --serial "$T/$tag.pri.out" \
		--stats "$T/$tag.pri.json" "$@" "$G/$GUEST.elf" 2>"$T/$tag.pri.log"
}
hash() { grep mem_hash "$1" | tr -d ' ,'; }
# failover SESSION TAG WAIT_FOR [OPTION_A [OPTION_B]]: start a secondary
# (OPTION_B) and a primary (OPTION_A, e.g. "--disk FILE"); once the
# primary's console shows WAIT_FOR (its output flows, so ACKs arrive),
# freeze it so the secondary's log goes silent and it takes over; then
# kill it. Checks the secondary's status and that every byte the primary
# printed (held until ACKed) is a prefix of the secondary's output.
# Sets WENT_LIVE to the go-live position, 0 if the primary had finished.
failover() {
	fs=$1 ft=$2 fw=$3 fa=${4:-} fb=${5:-}
	# shellcheck disable=SC2086
	secondary "$fs" "$ft" $fb
	# shellcheck disable=SC2086
	primary "$fs" "$ft" $fa &
	PRI=$!
	PIDS="$PIDS $PRI"
	for _ in $(seq 1 1000); do
		grep -q "$fw" "$T/$ft.pri.out" 2>/dev/null && break
		sleep 0.01
	done
	pkill -STOP -P "$PRI" ftvmm 2>/dev/null || true
	rc=0
	wait $SEC || rc=$?
	pkill -KILL -P "$PRI" ftvmm 2>/dev/null || true
	[ $rc = 1 ] || fail "secondary status $rc after failover: $(cat "$T/$ft.sec.log")"
	n=$(stat -c %s "$T/$ft.pri.out")
	head -c "$n" "$T/$ft.sec.out" | cmp -s - "$T/$ft.pri.out" ||
		fail "primary printed output the secondary did not (output rule)"
	WENT_LIVE=$(grep went_live_at "$T/$ft.sec.json" | tr -dc 0-9)
}

# 1. Lockstep: the secondary replays exactly what the primary ran.
secondary vm1 one
rc=0
primary vm1 one || rc=$?
[ $rc = 1 ] || fail "primary status $rc: $(cat "$T/one.pri.log")"
rc=0
wait $SEC || rc=$?
[ $rc = 1 ] || fail "secondary status $rc: $(cat "$T/one.sec.log")"
cmp -s "$T/one.pri.out" "$T/one.sec.out" || fail "secondary console differs"
[ "$(hash "$T/one.pri.json")" = "$(hash "$T/one.sec.json")" ] || fail "memory differs"
grep -q '"went_live_at": 0' "$T/one.sec.json" || fail "secondary went live in a clean run"
echo "ok: live replay through ftlogd is exact"

# Output rule figures: the guest's console bytes were each held until
# their ACK and all released by the end of the run.
n=$(stat -c %s "$T/one.pri.out")
[ "$n" -gt 0 ] || fail "the guest printed nothing"
grep -q "\"console_bytes\": $n," "$T/one.pri.json" || fail "console_bytes is not $n"
ip netns exec "$NA" "$FTCTL" -j session show vm1 socket "$T/a.sock" >"$T/one.stat.json" ||
	fail "ftctl session show on a"
python3 - "$T/one.stat.json" "$n" <<'PY' || fail "session stats: $(cat "$T/one.stat.json")"
import json, sys
s = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert s["outputs_released"] == n, (s["outputs_released"], n)
assert s["outputs_held"] == 0, s["outputs_held"]
assert s["hold_time_us"] > 0, s["hold_time_us"]
PY
ip netns exec "$NA" "$FTCTL" session show vm1 socket "$T/a.sock" >"$T/one.stat.txt" ||
	fail "ftctl session show on a"
grep -q "outputs held 0 released $n hold " "$T/one.stat.txt" ||
	fail "ftctl shows: $(cat "$T/one.stat.txt")"
if command -v curl >/dev/null; then
	ip netns exec "$NA" curl -s http://127.0.0.1:9464/metrics >"$T/metrics.out" ||
		fail "metrics"
	grep -q "^kvmft_outputs_released{session=\"vm1\",role=\"primary\"} $n\$" "$T/metrics.out" &&
		grep -q '^kvmft_outputs_held{session="vm1",role="primary"} 0$' "$T/metrics.out" ||
		fail "metrics: $(grep outputs "$T/metrics.out")"
fi
echo "ok: $n outputs held and released, mean $(grep -o 'hold [0-9.]* us' "$T/one.stat.txt")"

# 2. Failover: freeze the primary once its output flows (ACKs arrive),
# so the secondary's log goes silent and it takes over; then kill it.
failover vm2 two "tick 5"
grep -q "ticker done" "$T/two.sec.out" || fail "secondary did not finish"
if grep -q "ticker done" "$T/two.pri.out"; then
	echo "note: the primary finished before it was frozen; failover not exercised"
else
	[ "$WENT_LIVE" != 0 ] || fail "secondary did not go live"
	echo "ok: failover at position $WENT_LIVE"
fi
echo "ok: secondary finished; primary's $n console bytes are a prefix of its output"

# 3. Failover with a disk: each host has its own copy of the original
# disk. Held writes reach the primary's copy only once ACKed; the
# secondary (--disk-private) writes the replayed ones to its copy as it
# replays them, then its own.
GUEST=blkrmw
head -c 65536 /dev/zero > "$T/disk0"
for d in plain a b; do cp "$T/disk0" "$T/disk.$d"; done
rc=0
"$FTVMM" run --disk "$T/disk.plain" --serial "$T/plain.out" "$G/blkrmw.elf" || rc=$?
[ $rc = 1 ] || fail "plain blkrmw run: status $rc"
failover vm3 three "round 3 " "--disk $T/disk.a" "--disk $T/disk.b --disk-private"
cmp -s "$T/three.sec.out" "$T/plain.out" || fail "blkrmw on the secondary printed otherwise"
cmp -s "$T/disk.b" "$T/disk.plain" || fail "the secondary's disk differs from a plain run's"
if grep -q "blkrmw done" "$T/three.pri.out"; then
	echo "note: the disk primary finished before it was frozen; failover not exercised"
else
	echo "ok: disk failover at position $WENT_LIVE"
fi
echo "ok: after failover the secondary's disk equals a plain run's"
# The same on shared storage: one file for both hosts. The secondary
# never writes it before going live and keeps only the replayed writes
# the primary has not reported written (DISK_WRITTEN); at go-live it
# writes those, and the file ends as a plain run leaves it.
cp "$T/disk0" "$T/disk.s"
failover vm9 nine "round 3 " "--disk $T/disk.s" "--disk $T/disk.s"
cmp -s "$T/nine.sec.out" "$T/plain.out" || fail "blkrmw on shared storage printed otherwise"
cmp -s "$T/disk.s" "$T/disk.plain" || fail "the shared disk differs from a plain run's"
python3 - "$T/nine.sec.json" <<'PY' || fail "shared disk stats: $(grep -A8 '"disk"' "$T/nine.sec.json")"
import json, sys
d = json.load(open(sys.argv[1]))["disk"]
assert d["replay_dropped"] > 0, d
assert d["replay_peak"] < d["replay_dropped"] + d["applied_at_go_live"], d
PY
echo "ok: shared-storage failover at position $WENT_LIVE: $(python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['disk']; print('dropped', d['replay_dropped'], 'peak', d['replay_peak'], 'applied', d['applied_at_go_live'])" "$T/nine.sec.json")"
# And with 2 vCPUs (epochs): each epoch's device state carries the
# writes not yet released; the secondary writes those of its last epoch
# at go-live.
cp "$T/disk0" "$T/disk.t"
failover vm10 ten "round 3 " "--vcpus 2 --disk $T/disk.t" "--vcpus 2 --disk $T/disk.t"
cmp -s "$T/ten.sec.out" "$T/plain.out" || fail "blkrmw on 2 vCPUs printed otherwise"
cmp -s "$T/disk.t" "$T/disk.plain" || fail "the shared disk of the SMP VM differs from a plain run's"
grep -q "blkrmw done" "$T/ten.pri.out" && echo "note: the SMP disk primary finished before it was frozen"
echo "ok: SMP failover with a shared disk: $(grep -o 'going live from epoch [0-9]*' "$T/ten.sec.log"), \
$(python3 -c "import json,sys; print('applied', json.load(open(sys.argv[1]))['disk']['applied_at_go_live'], 'pending writes')" "$T/ten.sec.json")"

# 4. A secondary set up for another VM than the primary runs (another
# image, then another RAM size) refuses the live log at its first record
# (VMM_START) with status 2, before replaying anything.
mismatch() { # SESSION TAG WANT_MESSAGE SECONDARY_GUEST [SECONDARY_OPTION...]
	s=$1 tag=$2 want=$3
	shift 3
	GUEST=$1
	shift
	secondary "$s" "$tag" "$@"
	GUEST=clock
	primary "$s" "$tag" &
	PRI=$!
	PIDS="$PIDS $PRI"
	rc=0
	wait $SEC || rc=$?
	pkill -KILL -P "$PRI" ftvmm 2>/dev/null || true
	[ $rc = 2 ] || fail "$tag: secondary status $rc: $(cat "$T/$tag.sec.log")"
	grep -q "$want" "$T/$tag.sec.log" || fail "$tag: $(cat "$T/$tag.sec.log")"
	[ ! -s "$T/$tag.sec.out" ] || fail "$tag: the refused secondary ran the guest"
}
mismatch vm4 four "the primary runs another image" ticker
mismatch vm5 five "the primary has 67108864 bytes of RAM" clock --mem 32M
mismatch vm8 eight "and 1 vCPUs, this VM 0 and 2" clock --vcpus 2
echo "ok: a secondary for another image, RAM size or vCPU count refuses the live log at once"

# 5. SMP: the worker on 2 vCPUs, replicated by epochs through the rings.
# Lockstep: the secondary applies every epoch (RAM hash checked) and
# ends with the primary's memory, printing nothing; the primary printed
# everything (each byte released once its epoch was acknowledged).
GUEST=smp
rc=0
"$FTVMM" run --vcpus 2 --serial "$T/smp.plain" "$G/smp.elf" || rc=$?
[ $rc = 1 ] || fail "plain smp run: status $rc"
secondary vm6 six --vcpus 2
rc=0
primary vm6 six --vcpus 2 --epoch-hash || rc=$?
[ $rc = 1 ] || fail "smp primary status $rc: $(cat "$T/six.pri.log")"
rc=0
wait $SEC || rc=$?
[ $rc = 1 ] || fail "smp secondary status $rc: $(cat "$T/six.sec.log")"
cmp -s "$T/six.pri.out" "$T/smp.plain" || fail "smp primary printed otherwise"
cmp -s "$T/six.sec.out" "$T/smp.plain" || fail "the smp secondary printed otherwise than the primary"
h1=$(grep '"mem_hash"' "$T/six.pri.json") h2=$(grep '"mem_hash"' "$T/six.sec.json")
[ -n "$h1" ] && [ "$h1" = "$h2" ] || fail "smp memory differs: $h1 / $h2"
echo "ok: SMP epochs through ftlogd: $(grep -o '[0-9]* epochs applied' "$T/six.sec.log")"
# Failover: the primary printed at most what the secondary's last epoch
# covers; the secondary printed those epochs' bytes and continued: its
# output is a plain run's, no byte lost or twice.
secondary vm7 seven --vcpus 2
primary vm7 seven --vcpus 2 &
PRI=$!
PIDS="$PIDS $PRI"
for _ in $(seq 1 1000); do
	grep -q "round 1500/" "$T/seven.pri.out" 2>/dev/null && break
	sleep 0.01
done
pkill -STOP -P "$PRI" ftvmm 2>/dev/null || true
rc=0
wait $SEC || rc=$?
pkill -KILL -P "$PRI" ftvmm 2>/dev/null || true
[ $rc = 1 ] || fail "smp secondary status $rc after failover: $(cat "$T/seven.sec.log")"
n=$(stat -c %s "$T/seven.pri.out")
cb=$(grep applied_console_bytes "$T/seven.sec.json" | tr -dc 0-9)
head -c "$n" "$T/smp.plain" | cmp -s - "$T/seven.pri.out" || fail "smp primary printed otherwise"
[ "$n" -le "$cb" ] || fail "the primary printed $n bytes, the secondary's epoch covers $cb"
cmp -s "$T/seven.sec.out" "$T/smp.plain" ||
	fail "smp: the secondary's output is not a plain run's"
echo "ok: SMP failover: primary printed $n bytes, secondary went live after $cb"
