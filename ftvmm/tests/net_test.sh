#!/bin/sh
# net_test.sh FTVMM GUEST_DIR UDP_ECHO - virtio-net on a real tap, in a
# network namespace of its own: the netecho guest answers ARP and UDP
# echo with sequence-numbered replies (udp_echo checks every one); the
# recorded run replays exactly (console, memory hash) on another tap;
# a replay without --net diverges with a clear message; a log cut
# mid-run goes live on a tap and answers the next requests with the
# sequence numbers continuing; a bad --net or --mac is refused; the same
# with 2 vCPUs (checkpoint epochs).
# Exits 77 (skip) without /dev/kvm, root or /dev/net/tun.
set -u
ftvmm=$1 guests=$2 echo=$3
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm unavailable"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (tap, network namespace)"; exit 77; }
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
ns=ftnet$$
ip netns add "$ns" 2>/dev/null || { echo "SKIP: cannot create a network namespace"; exit 77; }
t=$(mktemp -d /tmp/ftvmm-net.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; ip netns del "$ns"; rm -rf "$t"' EXIT
ip -n "$ns" link set lo up
fail=0
pass=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
in_ns() { ip netns exec "$ns" "$@"; }
hash() { grep mem_hash "$1" | tr -d ' ,'; }

# vm TAG TAP CMD...: start ftvmm CMD in the background on tap TAP, give
# the tap the host address once ftvmm made it; VM is its pid.
vm() {
	tag=$1 tap=$2
	shift 2
	in_ns "$ftvmm" "$@" --net "$tap" --serial "$t/$tag.out" --stats "$t/$tag.json" \
		"$guests/netecho.elf" 2>"$t/$tag.err" &
	VM=$!
	for _ in $(seq 1 200); do
		ip -n "$ns" link show "$tap" >/dev/null 2>&1 && break
		sleep 0.02
	done
	ip -n "$ns" addr flush dev "$tap" 2>/dev/null
	ip -n "$ns" addr add 192.168.77.1/24 dev "$tap" &&
		ip -n "$ns" link set "$tap" up || bad "$tag: tap $tap did not appear"
}
# finish TAG WANT: wait for the VM, check its status.
finish() {
	rc=0
	wait "$VM" || rc=$?
	[ "$rc" = "$2" ] && ok "$1: status $rc" || { bad "$1: status $rc, want $2"; cat "$t/$1.err"; }
}

# 1. Echo: 300 requests, each reply checked (payload, guest sequence).
vm rec tap0 run --record "$t/net.log"
in_ns "$echo" --to 192.168.77.2 --count 300 --size 200 --timeout-ms 3000 \
	--json >"$t/echo1.json" && ok "300 UDP echoes, replies checked" ||
	bad "udp_echo: $(cat "$t/echo1.json")"
in_ns "$echo" --to 192.168.77.2 --count 0 --quit-port 9 >/dev/null
finish rec 1
grep -q "netecho: mac 52:54:00:12:34:56 ip 192.168.77.2" "$t/rec.out" &&
	grep -q "udp 300 " "$t/rec.out" && ok "the guest counted 300 echoes" ||
	bad "guest output: $(cat "$t/rec.out")"
python3 - "$t/rec.json" <<'PY' && ok "stats: frames in and out counted" || bad "net stats"
import json, sys
n = json.load(open(sys.argv[1]))["net"]
assert n["tx_frames"] >= 301 and n["tx_sent"] == n["tx_frames"], n
assert n["rx_frames"] >= 302 and n["rx_dropped"] == 0, n
PY

# 2. Replay: the same frames at the same positions, on another tap.
in_ns "$ftvmm" replay --log "$t/net.log" --net tap1 --serial "$t/rep.out" \
	--stats "$t/rep.json" "$guests/netecho.elf" 2>"$t/rep.err"
rc=$?
[ $rc = 1 ] && cmp -s "$t/rec.out" "$t/rep.out" &&
	[ "$(hash "$t/rec.json")" = "$(hash "$t/rep.json")" ] &&
	ok "replay: same console and memory" || bad "replay: status $rc $(cat "$t/rep.err")"
grep -q '"tx_sent": 0' "$t/rep.json" && ok "the replayer sent nothing" ||
	bad "the replayer sent frames"

# 3. Without --net the replay diverges at the guest's probe.
in_ns "$ftvmm" replay --log "$t/net.log" "$guests/netecho.elf" >/dev/null 2>"$t/nonet.err"
rc=$?
[ $rc = 6 ] && grep -q "divergence" "$t/nonet.err" && ok "replay without --net: divergence" ||
	bad "replay without --net: status $rc $(cat "$t/nonet.err")"

# 4. Go-live from a cut log: the new primary continues the guest; its
# replies carry the sequence numbers after the last one it replayed.
size=$(stat -c %s "$t/net.log")
head -c $((size / 2)) "$t/net.log" >"$t/half.log"
vm live tap2 replay --log "$t/half.log" --go-live
in_ns "$echo" --to 192.168.77.2 --count 50 --timeout-ms 3000 --json >"$t/echo2.json" &&
	ok "go-live: 50 more echoes answered" || bad "after go-live: $(cat "$t/echo2.json")"
in_ns "$echo" --to 192.168.77.2 --count 0 --quit-port 9 >/dev/null
finish live 1
grep -q "went live" "$t/live.err" && ok "the replayer went live" || bad "no go-live: $(cat "$t/live.err")"
python3 - "$t/echo2.json" "$t/live.out" <<'PY' && ok "guest sequence continues" || bad "sequence"
import json, re, sys
e = json.load(open(sys.argv[1]))
out = open(sys.argv[2]).read()
udp = int(re.search(r"udp (\d+) ", out).group(1))
# Replies before the cut were replayed, 50 came after it: in all
# between 50 and 350, and this run's 50 got the last sequence numbers.
assert 50 <= udp <= 350, udp
assert e["received"] == 50 and e["seq_errors"] == 0, e
PY
grep -q '"rx_discarded"' "$t/live.json" && ok "go-live stats written" || bad "go-live stats"

# 5. Bad options: clear errors, status 2.
"$ftvmm" run --net tap-name-far-too-long "$guests/netecho.elf" >/dev/null 2>"$t/e1"; rc=$?
[ $rc = 2 ] && grep -q "tap interface name" "$t/e1" && ok "a bad --net name refused" ||
	bad "--net: status $rc $(cat "$t/e1")"
in_ns "$ftvmm" run --net tap9 --mac 01:00:5e:00:00:01 "$guests/netecho.elf" >/dev/null \
	2>"$t/e2"; rc=$?
[ $rc = 2 ] && grep -q "\-\-mac" "$t/e2" && ok "multicast --mac refused" ||
	bad "--mac: status $rc $(cat "$t/e2")"

# 6. Two vCPUs (epochs of checkpoints): echoes through a recording
# primary; the replay applies its epochs and prints the same console; the
# first half of the log goes live and answers with the sequence continuing.
vm smp tap3 run --vcpus 2 --record "$t/smp.log"
in_ns "$echo" --to 192.168.77.2 --count 200 --interval-us 2000 --timeout-ms 3000 \
	--json >"$t/echo3.json" && ok "2 vCPUs: 200 UDP echoes, replies checked" ||
	bad "2 vCPUs: udp_echo: $(cat "$t/echo3.json")"
in_ns "$echo" --to 192.168.77.2 --count 0 --quit-port 9 >/dev/null
finish smp 1
in_ns "$ftvmm" replay --log "$t/smp.log" --net tap4 --serial "$t/smprep.out" \
	--stats "$t/smprep.json" "$guests/netecho.elf" 2>"$t/smprep.err"
rc=$?
[ $rc = 1 ] && cmp -s "$t/smp.out" "$t/smprep.out" && grep -q '"tx_sent": 0' "$t/smprep.json" &&
	ok "2 vCPUs: the replay printed the same console and sent nothing" ||
	bad "2 vCPUs: replay: status $rc $(cat "$t/smprep.err")"
size=$(stat -c %s "$t/smp.log")
head -c $((size / 2)) "$t/smp.log" >"$t/smphalf.log"
vm smplive tap5 replay --log "$t/smphalf.log" --go-live
in_ns "$echo" --to 192.168.77.2 --count 50 --timeout-ms 3000 --json >"$t/echo4.json" &&
	ok "2 vCPUs: go-live: 50 more echoes answered" ||
	bad "2 vCPUs: after go-live: $(cat "$t/echo4.json")"
in_ns "$echo" --to 192.168.77.2 --count 0 --quit-port 9 >/dev/null
finish smplive 1
python3 - "$t/echo4.json" "$t/smplive.out" <<'PY' && ok "2 vCPUs: guest sequence continues" || bad "2 vCPUs: sequence"
import json, re, sys
e = json.load(open(sys.argv[1]))
udp = int(re.search(r"udp (\d+) ", open(sys.argv[2]).read()).group(1))
assert 50 < udp <= 250, udp
assert e["received"] == 50 and e["seq_errors"] == 0, e
PY

echo "$pass passed, $fail failed"
[ $fail = 0 ]
