#!/bin/sh
# Permanent cut of the active path (its NIC disappears) with two paths:
# the session moves to the second path and resumes from the last ACK, no
# record lost or duplicated.
. "$(dirname "$0")/lib.sh"
setup_hosts
check --session cut --count 30000 --timeout 90 >"$T/check.out" &
CK=$!
gen --session cut --count 30000 --rate 10000 --size 64 --ack-timeout 60 >"$T/gen.out" &
GEN=$!
wait_event a connected 1 20 || fail "no connection"
sleep 0.5
ip -n "$NA" link del ftlog0
wait_event a path_switch 1 20 || fail "no path switch"
wait $GEN || fail "gen: $(cat "$T/gen.out")"
wait $CK || fail "check: $(cat "$T/check.out")"
grep -q '"records":30000[,}]' "$T/check.out" || fail "check: $(cat "$T/check.out")"
event_msg a path_switch | grep -q "dev ftlog1" || fail "switched to the wrong path"
echo "cut: $(event_msg a path_switch); $(cat "$T/check.out")"
