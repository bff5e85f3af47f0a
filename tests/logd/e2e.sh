#!/bin/sh
# End to end: records written on host a arrive on host b complete, in
# order and intact, all ACKed; the ring never drops.
. "$(dirname "$0")/lib.sh"
setup_hosts
check --session e2e --count 20000 --timeout 60 >"$T/check.out" &
CK=$!
gen --session e2e --count 20000 --size 128 >"$T/gen.out" || fail "gen: $(cat "$T/gen.out")"
wait $CK || fail "check: $(cat "$T/check.out")"
grep -q '"records":20000[,}]' "$T/check.out" || fail "check: $(cat "$T/check.out")"
grep -q '"all_acked":true' "$T/gen.out" || fail "gen: $(cat "$T/gen.out")"
grep -q '"dropped":0' "$T/gen.out" || fail "gen dropped records"
[ "$(count_events b connected)" -ge 1 ] || fail "no connected event on b"
echo "e2e: $(cat "$T/gen.out")"
