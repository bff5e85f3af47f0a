#!/bin/sh
# Link flap on the only FT logging path: the link goes down for longer
# than the heartbeat timeout and comes back. The session notices, waits,
# reconnects on the same path and resumes from the last ACK: every record
# arrives once, in order.
. "$(dirname "$0")/lib.sh"
PATHS=1 HB_TIMEOUT=500 setup_hosts
check --session flap --count 30000 --timeout 90 >"$T/check.out" &
CK=$!
gen --session flap --count 30000 --rate 10000 --size 64 --ack-timeout 60 >"$T/gen.out" &
GEN=$!
wait_event a connected 1 20 || fail "no connection"
sleep 0.5
ip -n "$NA" link set ftlog0 down
wait_event a disconnected 1 20 || fail "a did not notice the dead link"
sleep 0.3
ip -n "$NA" link set ftlog0 up
wait $GEN || fail "gen: $(cat "$T/gen.out")"
wait $CK || fail "check: $(cat "$T/check.out")"
grep -q '"records":30000[,}]' "$T/check.out" || fail "check: $(cat "$T/check.out")"
[ "$(count_events a connected)" -ge 2 ] || fail "a did not reconnect"
echo "flap: $(event_msg a disconnected); $(cat "$T/check.out")"
