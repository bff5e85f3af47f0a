#!/bin/sh
# bench/vmm/net_echo.sh BUILD_DIR [COUNT] - added output latency of the
# output rule for the netecho guest: UDP echo round trip (udp_echo, COUNT
# requests of 64 bytes, default 3000) to the guest on a tap, plain
# (`ftvmm run --net`) and under FT (`ftvmm run --ftlogd` on host a, its
# secondary replaying live on host b, ftlogd between them over a veth
# path; each reply held until b acknowledged the exit that sent it), in
# the same run on the same host. Prints both, their difference and ratio,
# and the TCP round trip of the logging path (the floor of the added
# latency). Then the same with 2 vCPUs (checkpoint epochs: each reply is
# held until its epoch is acknowledged), plain and under FT with
# --epoch 20 (fixed: --epoch-min 0; and ending early, --epoch-min 2, the
# default) and --epoch 5 (fixed), SMP_COUNT requests each (default 200).
# Needs root (network namespaces, tap) and /dev/kvm.
B=$(cd "${1:?usage: net_echo.sh BUILD_DIR [COUNT]}" && pwd)
COUNT=${2:-3000}
SMP_COUNT=${SMP_COUNT:-200}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$B/ftlogd MKCERT=$SRC/ftlogd/ftlogd-mkcert
FTVMM=$B/ftvmm/ftvmm G=$B/ftvmm/guests ECHO=$B/ftvmm/tools/udp_echo
TCP_PAIR=$B/bench/logd/tcp_pair
. "$SRC/tests/logd/lib.sh"
setup_hosts

# tap_up TAP: wait for ftvmm's tap on a and give it the host address.
tap_up() {
	for _ in $(seq 1 300); do
		ip -n "$NA" link show "$1" >/dev/null 2>&1 && break
		sleep 0.02
	done
	ip -n "$NA" addr add 192.168.77.1/24 dev "$1"
	ip -n "$NA" link set "$1" up
}
# echo_run TAG [N]: N echoes (default COUNT; after 20 or 200 to warm up);
# sets P50 P99 (us).
echo_run() {
	n=${2:-$COUNT}
	w=200
	[ "$n" -lt 1000 ] && w=20
	ip netns exec "$NA" "$ECHO" --to 192.168.77.2 --count $w --timeout-ms 3000 >/dev/null ||
		fail "$1: warm-up echoes failed"
	ip netns exec "$NA" "$ECHO" --to 192.168.77.2 --count "$n" --timeout-ms 3000 \
		--json >"$T/$1.echo.json" || fail "$1: $(cat "$T/$1.echo.json")"
	ip netns exec "$NA" "$ECHO" --to 192.168.77.2 --count 0 --quit-port 9 >/dev/null
	P50=$(num p50 <"$T/$1.echo.json") P99=$(num p99 <"$T/$1.echo.json")
}

# Plain.
ip netns exec "$NA" "$FTVMM" run --net ftp0 --serial "$T/plain.out" "$G/netecho.elf" \
	2>"$T/plain.log" &
VM=$!
tap_up ftp0
echo_run plain
wait $VM || true
PLAIN50=$P50 PLAIN99=$P99

# FT: secondary on b replaying live, primary on a holding each reply.
ip netns exec "$NB" "$FTVMM" replay --ftlogd "$T/b.sock" --session echo --net ftq0 \
	--serial "$T/sec.out" --stats "$T/sec.json" "$G/netecho.elf" 2>"$T/sec.log" &
SEC=$!
PIDS="$PIDS $SEC"
ip netns exec "$NA" "$FTVMM" run --ftlogd "$T/a.sock" --session echo --peer b --net ftp1 \
	--serial "$T/pri.out" --stats "$T/pri.json" "$G/netecho.elf" 2>"$T/pri.log" &
VM=$!
tap_up ftp1
echo_run ft
wait $VM || true
wait $SEC || true
cmp -s "$T/pri.out" "$T/sec.out" || fail "the secondary's console differs"
FT50=$P50 FT99=$P99
HOLD50=$(sed -n '/"net"/,$p' "$T/pri.json" | num p50)

# 2 vCPUs: plain, then FT with 20 and 5 ms epochs.
ip netns exec "$NA" "$FTVMM" run --vcpus 2 --net ftp2 --serial "$T/plain2.out" \
	"$G/netecho.elf" 2>"$T/plain2.log" &
VM=$!
tap_up ftp2
echo_run plain2 "$SMP_COUNT"
wait $VM || true
SMPPLAIN50=$P50
# smp_ft TAG EPOCH_MS EPOCH_MIN_MS: FT with 2 vCPUs; sets P50 P99, STOP
# (vCPU stop p50, us), EPOCHS and EARLY (epochs, those ended early).
smp_ft() {
	ep=$1
	ip netns exec "$NB" "$FTVMM" replay --ftlogd "$T/b.sock" --session "smp$ep" --vcpus 2 \
		--net "ftq$ep" --serial "$T/sec$ep.out" "$G/netecho.elf" 2>"$T/sec$ep.log" &
	SEC=$!
	PIDS="$PIDS $SEC"
	ip netns exec "$NA" "$FTVMM" run --ftlogd "$T/a.sock" --session "smp$ep" --peer b \
		--vcpus 2 --epoch "$2" --epoch-min "$3" --net "ftp$ep" --serial "$T/pri$ep.out" \
		--stats "$T/pri$ep.json" "$G/netecho.elf" 2>"$T/pri$ep.log" &
	VM=$!
	tap_up "ftp$ep"
	echo_run "smp$ep" "$SMP_COUNT"
	wait $VM || true
	wait $SEC || true
	cmp -s "$T/pri$ep.out" "$T/sec$ep.out" || fail "2 vCPUs: the secondary's console differs"
	STOP=$(sed -n '/"stop_us"/,/}/p' "$T/pri$ep.json" | num p50)
	EPOCHS=$(num epochs <"$T/pri$ep.json") EARLY=$(num early_epochs <"$T/pri$ep.json")
}
smp_ft 20 20 0
SMP20_50=$P50 SMP20_99=$P99 STOP20=$STOP
smp_ft 5 5 0
SMP5_50=$P50 SMP5_99=$P99 STOP5=$STOP
smp_ft 21 20 2
SMPE_50=$P50 SMPE_99=$P99 STOPE=$STOP EPE=$EPOCHS EARLYE=$EARLY

# The logging path's TCP round trip (64-byte ping-pong), for reference.
ip netns exec "$NB" "$TCP_PAIR" server 10.77.1.2:7999 >/dev/null 2>&1 &
RS=$!
PIDS="$PIDS $RS"
sleep 0.2
ip netns exec "$NA" "$TCP_PAIR" rr 10.77.1.2:7999 2000 >"$T/rtt.json" 2>/dev/null
RTT50=$(num p50_us <"$T/rtt.json")

awk -v a="$PLAIN50" -v b="$FT50" -v c="$PLAIN99" -v d="$FT99" -v h="$HOLD50" -v r="$RTT50" \
	-v n="$COUNT" 'BEGIN {
	printf "netecho UDP echo RTT, %d x 64 B (us):  plain p50 %.1f p99 %.1f   FT p50 %.1f p99 %.1f\n", n, a, c, b, d
	printf "  FT - plain: p50 +%.1f us, p99 +%.1f us; FT / plain p50 %.2f\n", b - a, d - c, b / a
	printf "  reply hold time p50 %.1f us; logging path TCP RTT p50 %s us\n", h, r == "" ? "?" : r
}'
awk -v a="$SMPPLAIN50" -v b="$SMP20_50" -v c="$SMP20_99" -v d="$SMP5_50" -v e="$SMP5_99" \
	-v s="$STOP20" -v t="$STOP5" -v n="$SMP_COUNT" 'BEGIN {
	printf "2 vCPUs, %d x 64 B (us): plain p50 %.1f   FT --epoch 20 p50 %.1f p99 %.1f (x%.0f)   FT --epoch 5 p50 %.1f p99 %.1f (x%.0f)\n", n, a, b, c, b / a, d, e, d / a
	printf "  vCPU stop per epoch p50: %.1f us (20 ms), %.1f us (5 ms)\n", s, t
}'
awk -v a="$SMP20_50" -v b="$SMPE_50" -v c="$SMPE_99" -v s="$STOPE" -v e="$EPE" -v k="$EARLYE" 'BEGIN {
	printf "2 vCPUs, --epoch 20 --epoch-min 2 (an epoch holding a reply ends 2 ms after its start): p50 %.1f p99 %.1f us; fixed 20 ms / early p50 %.1f\n", b, c, a / b
	printf "  %d epochs, %d ended early; vCPU stop per epoch p50 %.1f us\n", e, k, s
}'
