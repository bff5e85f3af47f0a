#!/bin/sh
# Host authentication: host a presents a certificate from another CA.
# Host b cuts it off in the handshake and says why; a reports the
# rejection too; no session exists on b and no record reaches it.
. "$(dirname "$0")/lib.sh"
setup_hosts
kill $PIDS
wait 2>/dev/null || true
PIDS=""
"$MKCERT" ca "$T/rogue"
"$MKCERT" host "$T/rogue" "$T" a   # replaces a's certificate
start_ftlogd a "$NA"
start_ftlogd b "$NB"
gen --session rogue --count 100 --ack-timeout 3 >"$T/gen.out" && fail "records were ACKed"
wait_event b peer_rejected 1 10 || fail "b did not reject a"
wait_event a peer_rejected 1 10 || fail "a did not report the rejection"
event_msg b peer_rejected | grep -q "peer certificate rejected" || fail "b: $(event_msg b peer_rejected)"
[ "$(count_events b session_registered)" = 0 ] || fail "b created a session"
check --session rogue --count 1 --timeout 1 >/dev/null 2>&1 && fail "b has records"
echo "cert: b: $(event_msg b peer_rejected)"
