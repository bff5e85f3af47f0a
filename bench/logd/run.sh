#!/bin/sh
# bench/logd/run.sh BUILD_DIR - FT log channel figures on a veth path
# between two network namespaces, each against its baseline measured in
# the same run on the same path (needs root):
#   1. log throughput (TLS, 4 KiB records) / raw TCP stream throughput
#   2. ACK latency p50/p99 vs TCP 64-byte round trip p50/p99
#   3. output hold time under the output rule (ftlog-gen --hold) vs RTT
#   4. failure detection time with the default heartbeat settings
# FUZZ_SECONDS=N also runs the libFuzzer targets N seconds each.
B=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$B/ftlogd MKCERT=$SRC/ftlogd/ftlogd-mkcert FTCTL=$B/ftctl/ftctl
TCP_PAIR=$B/bench/logd/tcp_pair
. "$SRC/tests/logd/lib.sh"
setup_hosts
num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p"; }
ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }

# 1. throughput
BYTES=${BYTES:-400000000}
N=$((BYTES / 4096))
ip netns exec "$NB" "$TCP_PAIR" server 10.77.1.2:7400 >/dev/null &
sleep 0.3
raw=$(ip netns exec "$NA" "$TCP_PAIR" stream 10.77.1.2:7400 "$BYTES" | num MBps)
check --session tp --count "$N" --timeout 300 >"$T/tp.check" &
CK=$!
gen --session tp --count "$N" --size 4096 --ring-bytes 8388608 --ack-timeout 120 >"$T/tp.gen" ||
	fail "gen: $(cat "$T/tp.gen")"
wait $CK || fail "check: $(cat "$T/tp.check")"
s=$(num all_acked_s <"$T/tp.gen")
ft=$(awk "BEGIN { printf \"%.1f\", $N * 4096 / $s / 1e6 }")
echo "throughput: raw TCP $raw MB/s, FT log (TLS 1.3, CRC32C, 4 KiB records, verified) $ft MB/s, ratio $(ratio "$ft" "$raw") (goal >= 0.8)"

# 2. ACK latency vs RTT, light load (2000 records/s)
ip netns exec "$NB" "$TCP_PAIR" server 10.77.1.2:7401 >/dev/null &
sleep 0.3
rr=$(ip netns exec "$NA" "$TCP_PAIR" rr 10.77.1.2:7401 5000)
rtt50=$(echo "$rr" | num p50_us)
rtt99=$(echo "$rr" | num p99_us)
check --session lat --count 6000 --timeout 60 >/dev/null &
CK=$!
gen --session lat --count 6000 --rate 2000 --size 64 --keep >/dev/null || fail "gen lat"
wait $CK
"$FTCTL" -j session show lat socket "$T/a.sock" >"$T/lat.json"
a50=$(sed -n 's/.*"p50":\([0-9.e+-]*\).*/\1/p' "$T/lat.json")
a99=$(sed -n 's/.*"p99":\([0-9.e+-]*\).*/\1/p' "$T/lat.json")
echo "ack latency: TCP RTT p50 $rtt50 us p99 $rtt99 us; ACK p50 $a50 us p99 $a99 us;" \
	"p50 - RTT p50 = $(awk "BEGIN { printf \"%.1f\", $a50 - $rtt50 }") us (goal <= 50), p50 ratio $(ratio "$a50" "$rtt50")"

# 3. output rule: hold an output after each record until ACKed
check --session hold --count 2000 --timeout 60 >/dev/null &
CK=$!
gen --session hold --count 2000 --rate 1000 --size 64 --hold >"$T/hold.gen" || fail "gen hold"
wait $CK
h50=$(sed -n 's/.*"p50":\([0-9.e+-]*\).*/\1/p' "$T/hold.gen")
h99=$(sed -n 's/.*"p99":\([0-9.e+-]*\).*/\1/p' "$T/hold.gen")
echo "output hold (generator, not the virtio-net guest): p50 $h50 us p99 $h99 us; p50 ratio to RTT $(ratio "$h50" "$rtt50")"

# 4. failure detection, default heartbeat 100 ms / timeout 1000 ms
RUNS=${RUNS:-5}
times=""
for i in $(seq 1 "$RUNS"); do
	gen --session fd$i --count 1 --keep >/dev/null || fail "gen fd$i"
	dev=$("$FTCTL" -j session show fd$i socket "$T/a.sock" | sed -n 's/.*dev \(ftlog[01]\).*/\1/p')
	before=$(count_events b peer_timeout)
	sleep 0.3
	t0=$(date +%s%N)
	ip -n "$NB" link set "$dev" down
	wait_event b peer_timeout $((before + 1)) 10 || fail "no detection in run $i"
	t1=$(date +%s%N)
	times="$times $(( (t1 - t0) / 1000000 ))"
	ip -n "$NB" link set "$dev" up
done
sorted=$(echo $times | tr ' ' '\n' | sort -n | tr '\n' ' ')
echo "failure detection (100 ms / 1000 ms, $RUNS runs, ms): $sorted(timeout 1000)"

if [ "${FUZZ_SECONDS:-}" ]; then
	sh "$SRC/tests/logd/fuzz.sh"
fi
