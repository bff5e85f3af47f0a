#!/bin/sh
# run.sh BUILD - fthbd figures, as ratios against baselines of the same run:
#   write throughput through the interception, sync and async mode, over
#   the plain directory underneath (dd, 64 KiB and 4 KiB writes, one fsync
#   at the end);
#   failover time (server a killed -> first transaction acknowledged by b)
#   over the lock's host-dead time D, the least any failover can take.
# Needs root and /dev/fuse; uses the end-to-end tests' two-server setup.
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
if [ -z "${2:-}" ]; then
	# One pair of servers per mode, each with its own baseline.
	sh "$0" "$build" sync && sh "$0" "$build" async
	exit
fi
mode=$2
BIN=$build/fthbd MKCERT=$top/ftlogd/ftlogd-mkcert FTCTL=$build/ftctl/ftctl
export BIN MKCERT FTCTL
. "$top/tests/hb/lib.sh"

# mbps DIR BS COUNT [NSENTER_PID]: MB/s of dd into DIR
mbps() {
	run=""
	[ -n "${4:-}" ] && run="nsenter -t $4 -m"
	$run dd if=/dev/zero of="$1/bench.dat" bs="$2" count="$3" conv=fsync 2>&1 |
		sed -n 's/.* s, \([0-9.]*\) \([MG]\)B\/s/\1 \2/p' |
		awk '{ print ($2 == "G") ? $1 * 1000 : $1 }'
	$run rm -f "$1/bench.dat"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

setup
mkdir -p "$T/plain"
plain64=$(mbps "$T/plain" 64k 512)
plain4=$(mbps "$T/plain" 4k 2048)
echo "plain directory: 64 KiB writes $plain64 MB/s, 4 KiB writes $plain4 MB/s"
sed -i "s/^mode = .*/mode = $mode/" "$T/a.conf" "$T/b.conf"
start_pair
pid=$(ip netns pids "$NA" | while read -r p; do
	[ "$(cat /proc/$p/comm)" = fthbd ] && echo "$p"; done | head -n 1)
m64=$(mbps "$T/a/data" 64k 512 "$pid")
m4=$(mbps "$T/a/data" 4k 2048 "$pid")
echo "$mode: 64 KiB writes $m64 MB/s ($(ratio "$m64" "$plain64") of plain)," \
	"4 KiB writes $m4 MB/s ($(ratio "$m4" "$plain4") of plain)"
client 60
wait_acked 100 20 || fail "no acknowledgements"
t0=$(now_ms)
kill_active
wait_acked $((before + 1)) 30 || fail "no failover"
el=$(($(now_ms) - t0))
dead=$("$FTCTL" -j lock show "$T/lock.area" | sed -n 's/.*"host_dead_ms":\([0-9]*\).*/\1/p')
echo "$mode failover: $el ms from SIGKILL to the first acknowledgement from b" \
	"($(ratio "$el" "$dead") x the lock's host-dead time $dead ms)"
