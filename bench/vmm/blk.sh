#!/bin/sh
# blk.sh BUILD [REPEATS] - virtio-blk: the blkrmw guest's run time and log
# volume, recording (--record) against a plain run of the same guest on
# the same initial disk, and replaying; medians of REPEATS runs (default 5).
set -eu
build=$1 n=${2:-5}
ftvmm=$build/ftvmm/ftvmm guest=$build/ftvmm/guests/blkrmw.elf
t=$(mktemp -d /tmp/ftvmm-blkbench.XXXXXX)
trap 'rm -rf "$t"' EXIT
head -c 65536 /dev/zero > "$t/disk0"
field() { grep "\"$2\"" "$1" | tr -dc 0-9; }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for i in $(seq 1 "$n"); do
	for mode in plain rec; do
		cp "$t/disk0" "$t/disk"
		set -- --disk "$t/disk" --serial "$t/out" --stats "$t/$mode.json"
		[ $mode = rec ] && set -- "$@" --record "$t/log"
		rc=0
		"$ftvmm" run "$@" "$guest" || rc=$?
		[ $rc = 1 ] || { echo "blk.sh: $mode run failed ($rc)" >&2; exit 1; }
		echo "$(field "$t/$mode.json" wall_ns)" >> "$t/$mode.ns"
	done
	cp "$t/disk0" "$t/disk"
	rc=0
	"$ftvmm" replay --disk "$t/disk" --log "$t/log" --serial "$t/out" --stats "$t/rep.json" \
		"$guest" || rc=$?
	[ $rc = 1 ] || { echo "blk.sh: replay failed ($rc)" >&2; exit 1; }
	echo "$(field "$t/rep.json" wall_ns)" >> "$t/rep.ns"
done
plain=$(median < "$t/plain.ns") rec=$(median < "$t/rec.ns") rep=$(median < "$t/rep.ns")
read=$(field "$t/rec.json" disk_read_bytes) written=$(field "$t/rec.json" disk_write_bytes)
log=$(field "$t/rec.json" log_bytes)
awk -v p="$plain" -v r="$rec" -v rp="$rep" -v rd="$read" -v wr="$written" -v l="$log" -v n="$n" 'BEGIN {
	printf "blkrmw, median of %d: plain %.1f ms, recording %.1f ms: ratio %.3f\n", n, p / 1e6, r / 1e6, r / p
	printf "replay %.1f ms: %.3f of recording\n", rp / 1e6, rp / r
	printf "disk read %d bytes, written %d; log %d bytes = %.2f MiB of log per MiB read\n", rd, wr, l, l / rd
}'
