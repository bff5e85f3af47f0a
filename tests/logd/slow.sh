#!/bin/sh
# Flow control: the replaying consumer on b is slow. The secondary's ring
# fills, then the primary's (nothing is ACKed beyond what b stored), and
# the primary VMM (ftlog-gen) is slowed down: it stalls, never drops a
# record, and the buffer never exceeds its size; everything arrives.
. "$(dirname "$0")/lib.sh"
setup_hosts
check --session slow --count 20000 --rate 10000 --timeout 60 >"$T/check.out" &
CK=$!
gen --session slow --count 20000 --size 64 --ring-bytes 16384 --ack-timeout 60 >"$T/gen.out" ||
	fail "gen: $(cat "$T/gen.out")"
wait $CK || fail "check: $(cat "$T/check.out")"
grep -q '"records":20000[,}]' "$T/check.out" || fail "check: $(cat "$T/check.out")"
stalls=$(sed -n 's/.*"stalls":\([0-9]*\).*/\1/p' "$T/gen.out")
[ "$stalls" -gt 0 ] || fail "the primary was never slowed: $(cat "$T/gen.out")"
grep -q '"dropped":0' "$T/gen.out" || fail "records dropped"
grep -q '"max_buffer_used":\([0-9]\{1,4\}\|1[0-5][0-9]\{3\}\|16[0-3][0-9][0-9]\)[,}]' "$T/gen.out" ||
	fail "buffer above its size: $(cat "$T/gen.out")"
echo "slow: $(cat "$T/gen.out")"
