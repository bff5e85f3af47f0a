#!/bin/sh
# smp.sh BUILD [REPEATS] [EPOCHS_MS] - the SMP worker: run time with
# checkpoint replication by epochs (--record to a file) against a plain
# run of the same worker, for 2 and 4 vCPUs and each epoch length
# (default "5 20 50"), interleaved; medians of REPEATS runs (default 5).
# Also the checkpoint bytes per epoch and the time the vCPUs are stopped
# per epoch (p50 and max, from --stats of the median run's last repeat).
set -eu
build=$1 n=${2:-5} epochs=${3:-5 20 50}
ftvmm=$build/ftvmm/ftvmm guest=$build/ftvmm/guests/smp.elf
t=$(mktemp -d /tmp/ftvmm-smpbench.XXXXXX)
trap 'rm -rf "$t"' EXIT
field() { # field FILE KEY [SUBKEY]: a number of a --stats file
	python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]
print(v[sys.argv[3]] if len(sys.argv) > 3 else v)' "$@"
}
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
run() { # run NAME ARGS...: one run, its wall time appended to NAME.ns
	name=$1
	shift
	rc=0
	"$ftvmm" run --serial "$t/out" --stats "$t/$name.json" "$@" "$guest" || rc=$?
	[ $rc = 1 ] || { echo "smp.sh: $name failed ($rc)" >&2; exit 1; }
	grep -q "result" "$t/out" || { echo "smp.sh: $name: no result" >&2; exit 1; }
	field "$t/$name.json" wall_ns >> "$t/$name.ns"
}
for v in 2 4; do
	for i in $(seq 1 "$n"); do
		run plain$v --vcpus $v
		for e in $epochs; do
			run rec$v.$e --vcpus $v --epoch $e --record "$t/log"
		done
	done
	p=$(median < "$t/plain$v.ns")
	for e in $epochs; do
		r=$(median < "$t/rec$v.$e.ns")
		j=$t/rec$v.$e.json
		awk -v v=$v -v e=$e -v p="$p" -v r="$r" -v n="$n" \
			-v ep="$(field "$j" epochs)" -v b50="$(field "$j" epoch_bytes p50)" \
			-v bmax="$(field "$j" epoch_bytes max)" -v s50="$(field "$j" stop_us p50)" \
			-v smax="$(field "$j" stop_us max)" 'BEGIN {
			printf "%d vCPUs, epoch %2d ms, median of %d: plain %.1f ms, replicated %.1f ms: " \
				"work rate ratio %.3f; %d epochs, %.0f KiB/epoch p50 (max %.0f), " \
				"stopped %.2f ms p50 (max %.2f)\n", v, e, n, p / 1e6, r / 1e6, p / r,
				ep, b50 / 1024, bmax / 1024, s50 / 1000, smax / 1000
		}'
	done
done
