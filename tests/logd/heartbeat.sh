#!/bin/sh
# Heartbeat loss: an idle session (no log traffic, only heartbeats) loses
# its only link in one direction. Both sides declare the peer dead, not
# before the configured timeout; the time to detection is printed. The
# side whose interface went down may instead see the error of its own
# link first (a send or read failing with "Network is unreachable" on a
# loaded machine): that is a detection too, and it is not a timeout.
. "$(dirname "$0")/lib.sh"
PATHS=1 HB_INTERVAL=50 HB_TIMEOUT=400 setup_hosts
gen --session hb --count 1 --keep --ack-timeout 10 >"$T/gen.out" || fail "gen: $(cat "$T/gen.out")"
wait_event b connected 1 10 || fail "no connection"
sleep 0.3
t0=$(date +%s%N)
ip -n "$NB" link set ftlog0 down
wait_event b disconnected 1 10 || fail "b did not detect the silence"
t1=$(date +%s%N)
wait_event a peer_timeout 1 10 || fail "a did not detect the silence"
timed="a"
if [ "$(count_events b peer_timeout)" -gt 0 ]; then
	timed="a b"
else
	event_msg b disconnected | grep -q "unreachable" ||
		fail "b: neither a timeout nor its own link error: $(event_msg b disconnected)"
fi
for h in $timed; do
	silent=$(event_msg $h peer_timeout | sed -n 's/.* for \([0-9]*\) ms (timeout \([0-9]*\) ms)/\1 \2/p')
	[ -n "$silent" ] || fail "$h: $(event_msg $h peer_timeout)"
	set -- $silent
	[ "$1" -ge "$2" ] || fail "$h declared the peer dead after $1 ms, before the $2 ms timeout"
done
echo "heartbeat: b detected after $(( (t1 - t0) / 1000000 )) ms: $(event_msg b disconnected)"
