#!/bin/sh
# cli_test.sh FTVMM GUEST_DIR - the ftvmm command line end to end: exit
# statuses, record -> replay, divergence and corrupt-log statuses,
# snapshot -> restore of a delta chain, virtio-blk (--disk), SMP epochs
# (--vcpus; the worker is $FTVMM_SMP_GUEST, default smp). Exits 77 (skip)
# without /dev/kvm.
set -u
ftvmm=$1 guests=$2
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: /dev/kvm unavailable"; exit 77; }
t=$(mktemp -d /tmp/ftvmm-cli.XXXXXX)
trap 'rm -rf "$t"' EXIT
fail=0

# expect STATUS DESCRIPTION CMD...: run CMD, check its exit status.
expect() {
	want=$1 what=$2
	shift 2
	"$@" > "$t/out" 2> "$t/err"
	got=$?
	if [ "$got" != "$want" ]; then
		echo "FAIL: $what: status $got, want $want"; sed 's/^/  stderr: /' "$t/err"
		fail=1
	else
		echo "ok: $what"
	fi
}
same() {
	if cmp -s "$1" "$2"; then echo "ok: $3"; else echo "FAIL: $3"; fail=1; fi
}

expect 1 "run: guest status (0 << 1) | 1" "$ftvmm" run --serial "$t/plain" "$guests/compute.elf"
grep -q "compute done" "$t/plain" || { echo "FAIL: no console output"; fail=1; }
expect 1 "record the ticker with jitter" "$ftvmm" run --jitter 2000 --seed 5 \
	--record "$t/tick.log" --serial "$t/tick.rec" --stats "$t/rec.json" "$guests/ticker.elf"
expect 1 "replay it" "$ftvmm" replay --log "$t/tick.log" --serial "$t/tick.rep" \
	--stats "$t/rep.json" "$guests/ticker.elf"
same "$t/tick.rec" "$t/tick.rep" "replayed console equals recorded console"
h1=$(grep mem_hash "$t/rec.json") h2=$(grep mem_hash "$t/rep.json")
[ -n "$h1" ] && [ "$h1" = "$h2" ] && echo "ok: same final memory hash" ||
	{ echo "FAIL: memory hash $h1 / $h2"; fail=1; }
expect 2 "replay with another image is refused" "$ftvmm" replay --log "$t/tick.log" \
	--serial "$t/x" "$guests/rtc.elf"

# Flip every bit of one byte in the middle of the log (the byte differs
# from run to run: the log holds timestamps): a CRC error, status 2.
cp "$t/tick.log" "$t/bad.log"
size=$(stat -c %s "$t/bad.log")
byte=$(od -An -tu1 -j $((size / 2)) -N1 "$t/bad.log" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 255)))" |
	dd of="$t/bad.log" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
cmp -s "$t/tick.log" "$t/bad.log" && { echo "FAIL: the byte was not changed"; fail=1; }
expect 2 "corrupt log" "$ftvmm" replay --log "$t/bad.log" --serial "$t/x" "$guests/ticker.elf"
grep -q "CRC mismatch" "$t/err" && echo "ok: CRC error reported" || { echo "FAIL: no CRC message"; fail=1; }
# Frames are multiples of 8 bytes after a 64-byte header: an offset of
# 4 mod 8 is always inside a frame.
head -c $((size / 3 / 8 * 8 + 4)) "$t/tick.log" > "$t/cut.log"
expect 2 "truncated log" "$ftvmm" replay --log "$t/cut.log" --serial "$t/x" "$guests/ticker.elf"
expect 1 "truncated log, --go-live" "$ftvmm" replay --go-live --log "$t/cut.log" \
	--serial "$t/live" "$guests/ticker.elf"
grep -q "ticker done" "$t/live" || { echo "FAIL: went live but did not finish"; fail=1; }

# Snapshots every 20 positions, then restore the chain.
expect 1 "run with snapshots" "$ftvmm" run --snapshot "$t/snap" --snapshot-every 20 \
	--serial "$t/full" --stats "$t/full.json" "$guests/compute.elf"
n=$(ls "$t"/snap.* | wc -l)
[ "$n" -ge 3 ] && echo "ok: $n snapshot files" || { echo "FAIL: $n snapshot files"; fail=1; }
expect 1 "restore snapshot + deltas" "$ftvmm" restore --serial "$t/rest" --stats "$t/rest.json" \
	"$t/snap.0" "$t/snap.1" "$t/snap.2"
tail -c "$(stat -c %s "$t/rest")" "$t/full" > "$t/full.tail"
same "$t/full.tail" "$t/rest" "restored run prints the rest of the original output"
h1=$(grep mem_hash "$t/full.json") h2=$(grep mem_hash "$t/rest.json")
[ "$h1" = "$h2" ] && echo "ok: restored run ends with the same memory" ||
	{ echo "FAIL: memory hash $h1 / $h2"; fail=1; }
expect 2 "a delta out of order is refused" "$ftvmm" restore --serial "$t/x" "$t/snap.0" "$t/snap.2"
expect 2 "not an ELF" "$ftvmm" run --serial "$t/x" "$t/snap.0"
expect 2 "memory above 3 GiB" "$ftvmm" run --mem 4G --serial "$t/x" "$guests/compute.elf"
expect 2 "--net: a bad tap name" "$ftvmm" run --net tap-name-far-too-long "$guests/compute.elf"

# virtio-blk: record; replay on a copy of the original disk (never
# written); go live from half the log on another copy, which ends equal
# to the primary's disk.
head -c 65536 /dev/zero > "$t/disk0"
for d in rec rep priv livepriv live snap; do cp "$t/disk0" "$t/disk.$d"; done
expect 1 "run blkrmw with a disk, recording" "$ftvmm" run --disk "$t/disk.rec" --jitter 2000 \
	--seed 3 --record "$t/blk.log" --serial "$t/blk.rec" --stats "$t/blk.json" "$guests/blkrmw.elf"
grep -q "blkrmw done 628 requests" "$t/blk.rec" && echo "ok: blkrmw finished" ||
	{ echo "FAIL: blkrmw output"; sed 's/^/  /' "$t/blk.rec"; fail=1; }
grep -q '"disk_read_bytes": 299008' "$t/blk.json" && echo "ok: disk bytes in the stats" ||
	{ echo "FAIL: disk_read_bytes"; fail=1; }
cmp -s "$t/disk0" "$t/disk.rec" && { echo "FAIL: the disk was not written"; fail=1; }
expect 1 "replay it on a copy of the disk" "$ftvmm" replay --disk "$t/disk.rep" \
	--log "$t/blk.log" --serial "$t/blk.rep" "$guests/blkrmw.elf"
same "$t/blk.rec" "$t/blk.rep" "replayed blkrmw console equals recorded"
same "$t/disk0" "$t/disk.rep" "the replayer did not write its disk"
expect 1 "replay on a private copy (--disk-private)" "$ftvmm" replay --disk "$t/disk.priv" \
	--disk-private --log "$t/blk.log" --serial "$t/blk.priv" "$guests/blkrmw.elf"
same "$t/blk.rec" "$t/blk.priv" "private-copy replay console equals recorded"
same "$t/disk.rec" "$t/disk.priv" "the private copy was written as the log replayed"
expect 2 "--disk-private without --disk" "$ftvmm" replay --disk-private --log "$t/blk.log" \
	"$guests/blkrmw.elf"
head -c $(($(stat -c %s "$t/blk.log") / 2)) "$t/blk.log" > "$t/blkcut.log"
expect 1 "go live from half the log" "$ftvmm" replay --go-live --disk "$t/disk.live" \
	--log "$t/blkcut.log" --serial "$t/blk.live" "$guests/blkrmw.elf"
same "$t/disk.rec" "$t/disk.live" "after going live the disk is the primary's"
expect 1 "go live from half the log, --disk-private" "$ftvmm" replay --go-live --disk-private \
	--disk "$t/disk.livepriv" --log "$t/blkcut.log" --serial "$t/blk.livepriv" "$guests/blkrmw.elf"
same "$t/disk.rec" "$t/disk.livepriv" "after going live the private copy is the primary's"
same "$t/blk.live" "$t/blk.livepriv" "and the console the same as without --disk-private"
expect 6 "replay without --disk diverges" "$ftvmm" replay --log "$t/blk.log" --serial "$t/x" \
	"$guests/blkrmw.elf"
grep -q "replays with --disk" "$t/err" && echo "ok: says --disk" || { echo "FAIL: no hint"; fail=1; }
head -c 1000 /dev/zero > "$t/odd"
expect 2 "a disk whose size is not a multiple of 512" "$ftvmm" run --disk "$t/odd" \
	"$guests/blkrmw.elf"
expect 2 "a missing disk" "$ftvmm" run --disk "$t/none" "$guests/blkrmw.elf"
expect 1 "snapshots of a VM with a disk" "$ftvmm" run --disk "$t/disk.snap" --snapshot "$t/bsnap" \
	--snapshot-every 1000 --serial "$t/x" "$guests/blkrmw.elf"
expect 2 "its restore without --disk is refused" "$ftvmm" restore --serial "$t/x" "$t/bsnap.0"

# SMP: the worker on 2 vCPUs, recorded by epochs; replay applies them;
# go-live from a cut log prints exactly what the primary had not
# released.
smp=$guests/${FTVMM_SMP_GUEST:-smp}.elf
expect 2 "--vcpus 9 is refused" "$ftvmm" run --vcpus 9 "$smp"
expect 2 "--vcpus 0 is refused" "$ftvmm" run --vcpus 0 "$smp"
cp "$t/disk0" "$t/disk.one"; cp "$t/disk0" "$t/disk.two"
expect 1 "blkrmw with a disk, 1 vCPU" "$ftvmm" run --disk "$t/disk.one" --serial "$t/blk1" \
	"$guests/blkrmw.elf"
expect 1 "blkrmw with a disk, 2 vCPUs" "$ftvmm" run --vcpus 2 --disk "$t/disk.two" \
	--serial "$t/blk2" "$guests/blkrmw.elf"
same "$t/disk.one" "$t/disk.two" "the disk after 2 vCPUs = after 1"
same "$t/blk1" "$t/blk2" "and the console"
expect 1 "smp worker, 1 vCPU" "$ftvmm" run --serial "$t/smp1" "$smp"
expect 1 "smp worker, 2 vCPUs, recorded" "$ftvmm" run --vcpus 2 --epoch 10 --epoch-hash \
	--record "$t/smp.log" --serial "$t/smp2" --stats "$t/smp.json" "$smp"
[ "$(tail -1 "$t/smp1")" = "$(tail -1 "$t/smp2")" ] && grep -q "result" "$t/smp1" &&
	echo "ok: same result with 1 and 2 vCPUs" || { echo "FAIL: smp results differ"; fail=1; }
expect 1 "replay the SMP log" "$ftvmm" replay --log "$t/smp.log" --stats "$t/smprep.json" \
	--serial "$t/smprep" "$smp"
same "$t/smp2" "$t/smprep" "the SMP replay prints what the primary printed"
grep -q "epochs applied" "$t/err" && echo "ok: epochs applied reported" ||
	{ echo "FAIL: no epochs applied"; fail=1; }
e1=$(grep '"epochs"' "$t/smp.json" | tr -dc 0-9) e2=$(grep epochs_applied "$t/smprep.json" | tr -dc 0-9)
[ -n "$e1" ] && [ "$e1" = "$e2" ] && echo "ok: $e2 epochs applied" ||
	{ echo "FAIL: epochs $e1 / $e2"; fail=1; }
h1=$(grep '"mem_hash"' "$t/smp.json") h2=$(grep '"mem_hash"' "$t/smprep.json")
[ "$h1" = "$h2" ] && echo "ok: replayed SMP memory equals the primary's" ||
	{ echo "FAIL: memory hash $h1 / $h2"; fail=1; }
size=$(stat -c %s "$t/smp.log")
head -c $((size / 2 / 8 * 8 + 4)) "$t/smp.log" > "$t/smpcut.log"
expect 2 "truncated SMP log" "$ftvmm" replay --log "$t/smpcut.log" "$smp"
expect 1 "truncated SMP log, --go-live" "$ftvmm" replay --go-live --log "$t/smpcut.log" \
	--serial "$t/smplive" --stats "$t/smplive.json" "$smp"
# It prints the bytes of the epochs it applied, then its own.
same "$t/smp2" "$t/smplive" "the new primary's output = the plain output"
# An SMP secondary with a disk of its own: each epoch's writes go to its
# copy as it applies the epoch; from half the log it goes live on it.
cp "$t/disk0" "$t/disk.smppri"; cp "$t/disk0" "$t/disk.smpcopy"; cp "$t/disk0" "$t/disk.smplive"
expect 1 "blkrmw on 2 vCPUs, recorded" "$ftvmm" run --vcpus 2 --epoch 2 --disk "$t/disk.smppri" \
	--record "$t/smpblk.log" --serial "$t/x" "$guests/blkrmw.elf"
same "$t/disk.one" "$t/disk.smppri" "the recorded SMP run's disk = the plain run's"
expect 1 "an SMP secondary on a private copy (--disk-private)" "$ftvmm" replay --disk-private \
	--disk "$t/disk.smpcopy" --log "$t/smpblk.log" --stats "$t/smpblk.json" "$guests/blkrmw.elf"
same "$t/disk.one" "$t/disk.smpcopy" "the SMP private copy = the primary's disk"
grep -q '"written_to_private_copy": [1-9]' "$t/smpblk.json" && echo "ok: writes counted" ||
	{ echo "FAIL: no written_to_private_copy in the stats"; fail=1; }
size=$(stat -c %s "$t/smpblk.log")
head -c $((size / 2 / 8 * 8 + 4)) "$t/smpblk.log" > "$t/smpblkcut.log"
expect 1 "half of it, --disk-private --go-live" "$ftvmm" replay --disk-private --go-live \
	--disk "$t/disk.smplive" --log "$t/smpblkcut.log" --serial "$t/smpblk.live" "$guests/blkrmw.elf"
same "$t/disk.one" "$t/disk.smplive" "the new primary's private copy = the primary's disk"
same "$t/blk1" "$t/smpblk.live" "and its console the plain run's"
expect 2 "an SMP log replayed with another image is refused" "$ftvmm" replay \
	--log "$t/smp.log" "$guests/compute.elf"
# Every epoch: of 20 ms for the full worker, 1 ms for the rig's short one.
sep=20
[ "${FTVMM_SMP_GUEST:-smp}" = smp ] || sep=1
expect 1 "SMP snapshots every epoch of $sep ms" "$ftvmm" run --vcpus 2 --epoch $sep \
	--snapshot "$t/ssnap" --snapshot-every 1 --serial "$t/sfull" --stats "$t/sfull.json" "$smp"
set --
while [ -f "$t/ssnap.$#" ]; do set -- "$@" "$t/ssnap.$#"; done
[ $# -ge 2 ] && echo "ok: $# SMP snapshot files" || { echo "FAIL: $# SMP snapshot files"; fail=1; }
expect 1 "restore the SMP snapshot + its deltas" "$ftvmm" restore --serial "$t/srest" \
	--stats "$t/srest.json" "$@"
tail -c "$(stat -c %s "$t/srest")" "$t/sfull" > "$t/sfull.tail"
same "$t/sfull.tail" "$t/srest" "restored SMP run prints the rest of the original output"
grep -q "result" "$t/sfull" && echo "ok: the SMP run with snapshots finished" ||
	{ echo "FAIL: the SMP run with snapshots did not finish"; fail=1; }
exit $fail
