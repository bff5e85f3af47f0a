#!/bin/sh
# End to end: records written on host a arrive on host b complete, in
# order and intact, all ACKed; the ring never drops. ftctl shows the
# session on both hosts, `ftctl monitor` follows the events, and the
# opt-in Prometheus endpoint serves the session's figures.
. "$(dirname "$0")/lib.sh"
setup_hosts "metrics_listen = 127.0.0.1:9464"
ip netns exec "$NA" "$FTCTL" -j monitor count 2 timeout 30 socket "$T/a.sock" >"$T/monitor.out" &
MON=$!
sleep 0.2
check --session e2e --count 20000 --timeout 60 >"$T/check.out" &
CK=$!
gen --session e2e --count 20000 --size 128 --keep >"$T/gen.out" || fail "gen: $(cat "$T/gen.out")"
wait $CK || fail "check: $(cat "$T/check.out")"
grep -q '"records":20000[,}]' "$T/check.out" || fail "check: $(cat "$T/check.out")"
grep -q '"all_acked":true' "$T/gen.out" || fail "gen: $(cat "$T/gen.out")"
grep -q '"dropped":0' "$T/gen.out" || fail "gen dropped records"
wait $MON || fail "monitor: $(cat "$T/monitor.out")"
grep -q '"type":"session_registered"' "$T/monitor.out" || fail "monitor: $(cat "$T/monitor.out")"
grep -q '"type":"connected"' "$T/monitor.out" || fail "monitor: $(cat "$T/monitor.out")"
"$FTCTL" -j session show e2e socket "$T/a.sock" >"$T/a.json" || fail "ftctl on a"
"$FTCTL" -j session show e2e socket "$T/b.sock" >"$T/b.json" || fail "ftctl on b"
grep -q '"records_sent":20000[,}]' "$T/a.json" || fail "a: $(cat "$T/a.json")"
grep -q '"state":"connected"' "$T/a.json" || fail "a: $(cat "$T/a.json")"
grep -q '"records_stored":20000[,}]' "$T/b.json" || fail "b: $(cat "$T/b.json")"
"$FTCTL" session show nosuch socket "$T/a.sock" 2>"$T/err.out" && fail "unknown session shown"
grep -q "no session nosuch" "$T/err.out" || fail "error text: $(cat "$T/err.out")"
if command -v curl >/dev/null; then
	ip netns exec "$NA" curl -s http://127.0.0.1:9464/metrics >"$T/metrics.out" || fail "metrics"
	grep -q '^kvmft_log_bytes_sent{session="e2e",role="primary"} [1-9]' "$T/metrics.out" ||
		fail "metrics: $(cat "$T/metrics.out")"
fi
echo "e2e: $(cat "$T/gen.out")"
"$FTCTL" session list socket "$T/a.sock"
