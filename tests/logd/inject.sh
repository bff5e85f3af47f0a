#!/bin/sh
# Bad frames against a real secondary: corrupt, reordered, replayed,
# truncated, records with a gap. Each is refused with an event saying why,
# nothing bad is stored, the session recovers, and the replaying consumer
# reads exactly the good records, once each, in order.
. "$(dirname "$0")/lib.sh"
setup_hosts
ip netns exec "$NA" "$BIN/ftlog-inject" "$T/ca/ca.pem" "$T/a.pem" "$T/a.key" b \
	10.77.1.2:7301 inj >"$T/inject.out" || fail "inject: $(cat "$T/inject.out")"
check --session inj --count 30 --timeout 5 >"$T/check.out" || fail "check: $(cat "$T/check.out")"
for why in "payload CRC mismatch" "out of order" "replayed DATA frame" "record seq 25 on ring 0, expected 24"; do
	grep "frame_rejected" "$T/b.log" | grep -q "$why" || fail "no frame_rejected event for: $why"
done
kill -0 ${PIDS##* } || fail "ftlogd on b died"
cat "$T/inject.out"
