#!/bin/sh
# lock_test.sh FTVMM FTCTL GUEST_DIR - ftvmm and the VM's on-disk lock
# (Documentation/lock.md): a primary runs the VM only while it owns the lock; a
# secondary goes live only once it wins it, and stops (status 10) while
# a live host owns it; a primary frozen past its lease is fenced when it
# resumes, after another host took the VM over. Exits 77 without /dev/kvm.
set -u
ftvmm=$1 ftctl=$2 guests=$3
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm unavailable"; exit 77; }
t=$(mktemp -d /tmp/ftvmm-lock.XXXXXX)
pids=
trap 'for p in $pids; do kill -CONT $p; kill -KILL $p; done 2>/dev/null; rm -rf "$t"' EXIT
fail=0 npass=0

ok() { echo "ok: $1"; npass=$((npass + 1)); }
bad() { echo "FAIL: $1"; fail=1; }
# expect STATUS DESCRIPTION CMD...: run CMD, check its exit status.
expect() {
	want=$1 what=$2
	shift 2
	"$@" > "$t/out" 2> "$t/err"
	got=$?
	if [ "$got" = "$want" ]; then ok "$what"; else
		bad "$what: status $got, want $want"; sed 's/^/  stderr: /' "$t/err"
	fi
}
# wait_for FILE TEXT: up to 20 s.
wait_for() {
	for _ in $(seq 1 400); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# Short timeouts: host-dead is about 1.3 s.
area=$t/area
"$ftctl" lock init "$area" --renew-ms 100 --io-timeout-ms 200 --lease-ms 600 > /dev/null ||
	{ bad "lock init"; exit 1; }
lk="--lock $area --lock-name vm1"

expect 2 "--lock without --host-id is a usage error" "$ftvmm" run --lock "$area" \
	--lock-name vm1 "$guests/clock.elf"
expect 2 "--lock on a replay without --go-live is a usage error" "$ftvmm" replay \
	--log /dev/null $lk --host-id 2 "$guests/clock.elf"
expect 2 "--lock on something that is not a lock area" "$ftvmm" run --lock "$guests/clock.elf" \
	--lock-name vm1 --host-id 1 "$guests/clock.elf"

# A log of the ticker, cut to a third: replaying it with --go-live ends
# the log early and asks for the lock.
"$ftvmm" run --jitter 2000 --seed 5 --record "$t/tick.log" --serial "$t/rec" \
	"$guests/ticker.elf" 2> "$t/err"
[ $? = 1 ] || { bad "record the ticker"; cat "$t/err"; }
size=$(stat -c %s "$t/tick.log")
head -c $((size / 3)) "$t/tick.log" > "$t/cut.log"

# Host 1 holds vm1 (a live primary, as far as the area says).
"$ftctl" lock acquire "$area" vm1 --host-id 1 --hold > "$t/hold" 2>&1 &
holder=$!
pids="$pids $holder"
wait_for "$t/hold" "acquired vm1" || bad "ftctl holds vm1"

expect 10 "a second primary is refused while host 1 owns vm1" "$ftvmm" run $lk --host-id 2 \
	--lock-timeout 1 --serial "$t/second" "$guests/clock.elf"
grep -q "owned by host 1" "$t/err" && ok "the refusal names the owner" ||
	{ bad "no owner in the message"; cat "$t/err"; }
[ ! -s "$t/second" ] && ok "the refused primary never ran the guest" || bad "the guest ran"

expect 10 "go-live is refused while host 1 owns vm1" "$ftvmm" replay --go-live \
	--log "$t/cut.log" $lk --host-id 2 --lock-timeout 1 --serial "$t/rep1" "$guests/ticker.elf"
grep -q "ticker done" "$t/rep1" && bad "the refused secondary went on running" ||
	ok "the refused secondary stopped at the end of the log"
cmp -s "$t/rep1" "$t/rec" && bad "replayed output equals the whole run" ||
	{ head -c "$(stat -c %s "$t/rep1")" "$t/rec" | cmp -s - "$t/rep1" &&
	  ok "its output is a prefix of the primary's" || bad "its output differs from the primary's"; }

kill "$holder"
wait "$holder"
expect 1 "go-live wins vm1 once host 1 released it" "$ftvmm" replay --go-live \
	--log "$t/cut.log" $lk --host-id 2 --serial "$t/rep2" "$guests/ticker.elf"
grep -q "ticker done" "$t/rep2" && ok "the live secondary ran the VM to its end" ||
	bad "no end of the VM after go-live"
"$ftctl" lock show "$area" > "$t/show"
grep -q "^resource vm1" "$t/show" && { bad "vm1 still claimed after the VM ended"; cat "$t/show"; } ||
	ok "vm1 is released when the VM ends"

# The same with 2 vCPUs (epochs): a secondary that applied half of an
# SMP log goes live only once it wins vm1.
"$ftvmm" run --vcpus 2 --epoch 10 --record "$t/smp.log" --serial "$t/smprec" \
	"$guests/smp.elf" 2> "$t/err"
[ $? = 1 ] || { bad "record the smp worker on 2 vCPUs"; cat "$t/err"; }
size=$(stat -c %s "$t/smp.log")
head -c $((size / 2 / 8 * 8)) "$t/smp.log" > "$t/smpcut.log"
"$ftctl" lock acquire "$area" vm1 --host-id 1 --hold > "$t/hold" 2>&1 &
holder=$!
pids="$pids $holder"
wait_for "$t/hold" "acquired vm1" || bad "ftctl holds vm1 again"
expect 10 "2 vCPUs: go-live is refused while host 1 owns vm1" "$ftvmm" replay --go-live \
	--log "$t/smpcut.log" $lk --host-id 2 --lock-timeout 1 --serial "$t/smp1" "$guests/smp.elf"
grep -q "result" "$t/smp1" && bad "2 vCPUs: the refused secondary ran on" ||
	ok "2 vCPUs: the refused secondary stopped after the epochs it applied"
kill "$holder"
wait "$holder"
expect 1 "2 vCPUs: go-live wins vm1 once host 1 released it" "$ftvmm" replay --go-live \
	--log "$t/smpcut.log" $lk --host-id 2 --serial "$t/smp2" "$guests/smp.elf"
grep -q "owns the lock on vm1" "$t/err" && ok "2 vCPUs: it took the lock before running" ||
	{ bad "2 vCPUs: no lock message"; cat "$t/err"; }
[ "$(tail -1 "$t/smp2")" = "$(tail -1 "$t/smprec")" ] &&
	ok "2 vCPUs: the new primary ends with the recorded result" ||
	{ bad "2 vCPUs: results differ"; tail -1 "$t/smp2" "$t/smprec"; }
"$ftctl" lock show "$area" > "$t/show"
grep -q "^resource vm1" "$t/show" && { bad "vm1 still claimed after the SMP VM ended"; cat "$t/show"; } ||
	ok "2 vCPUs: vm1 is released when the VM ends"

# A primary frozen past its lease: host 2 takes vm1 over; when the
# primary resumes it is fenced (exits 10) before the VM can end.
"$ftvmm" run $lk --host-id 1 --serial "$t/frozen" "$guests/clock.elf" 2> "$t/frozen.err" &
pri=$!
pids="$pids $pri"
wait_for "$t/frozen.err" "owns the lock on vm1" || bad "the primary did not take vm1"
kill -STOP "$pri"
"$ftctl" lock acquire "$area" vm1 --host-id 2 --timeout 20 > "$t/take" 2>&1 &&
	grep -q "acquired vm1" "$t/take" && ok "host 2 takes vm1 from the frozen primary" ||
	{ bad "host 2 could not take vm1"; cat "$t/take"; }
kill -CONT "$pri"
wait "$pri"
rc=$?
[ "$rc" = 10 ] && ok "the resumed primary is fenced (status 10)" || bad "resumed primary: status $rc"
grep -q "lost the lock on vm1" "$t/frozen.err" && ok "it says it lost the lock" ||
	{ bad "no loss message"; cat "$t/frozen.err"; }
grep -q "clock done" "$t/frozen" && bad "the fenced VM ran to its end" ||
	ok "the fenced VM did not run on"

echo "$npass passed, $fail failed"
exit $fail
