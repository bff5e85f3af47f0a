#!/bin/sh
# Failover under write load: a SQLite (WAL) service on the active a
# commits one transaction per client request; a and everything in it is
# killed with SIGKILL mid-write, and its links go down. The passive b takes the public address,
# applies its safe queue and restarts the service; the client, in c,
# reconnects to the same address and goes on. Every transaction the
# client saw acknowledged is in b's database, which passes
# integrity_check. MODE=async runs the same in async mode (fsync still
# waits for the passive, so SQLite's commits are as safe).
. "$(dirname "$0")/lib.sh"
setup
start_pair
client 60
wait_acked 200 20 || fail "the client got $(acked) acknowledgements from a"
t0=$(now_ms)
kill_active
wait_acked $((before + 1)) 30 || fail "no acknowledgement from the new active ($(acked) acked)"
t1=$(now_ms)
has_pub "$NB" || fail "b answers but does not hold $PUB"
wait_acked $((before + 100)) 20 || fail "the new active stopped answering ($(acked) acked)"
show b | grep -q '"role":"active"' || fail "b is not active: $(show b)"
grep -q "failover_done" "$T/b.log" || fail "b did not log its failover"
kill "$CLIENT"
wait "$CLIENT" 2>/dev/null || true
# Stop b (its service last), then check the replica's database.
kill -TERM $(ip netns pids "$NB")
for _ in $(seq 1 100); do [ -z "$(ip netns pids "$NB")" ] && break; sleep 0.05; done
"$BIN/fthb-sqlsvc" verify "$T/b/data/t.db" "$T/acked" >"$T/verify.out" 2>&1 ||
	fail "verify: $(cat "$T/verify.out")"
echo "failover (${MODE:-sync}): $(cat "$T/verify.out"); $(grep applied "$T/b.log" | sed 's/.*applied: //')"
echo "failover time (SIGKILL of a -> first acknowledgement from b): $((t1 - t0)) ms"
