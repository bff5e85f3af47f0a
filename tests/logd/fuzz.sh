#!/bin/sh
# Builds the libFuzzer targets with clang (frame decoder, control message
# parser) and runs each for FUZZ_SECONDS (default 10). Exit 77 when clang
# or libFuzzer is missing. Longer runs: FUZZ_SECONDS=600 (bench).
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${FUZZ_OUT:-$(mktemp -d /tmp/ftlogd-fuzz.XXXXXX)}
secs=${FUZZ_SECONDS:-10}
CXX=${FUZZ_CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "SKIP: no $CXX"; exit 77; }
flags="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -I$SRC/lib -I$SRC/uapi"
echo 'extern "C" int LLVMFuzzerTestOneInput(const char *, unsigned long) { return 0; }' >"$OUT/probe.cc"
$CXX $flags "$OUT/probe.cc" -o "$OUT/probe" 2>/dev/null || { echo "SKIP: $CXX has no libFuzzer"; exit 77; }
$CXX $flags "$SRC/lib/log/fuzz_frame.cc" "$SRC/lib/log/frame.cc" "$SRC/lib/log/crc32c.cc" -o "$OUT/fuzz_frame"
$CXX $flags "$SRC/lib/channel/fuzz_msg.cc" "$SRC/lib/channel/unix_msg.cc" -o "$OUT/fuzz_msg"
for f in fuzz_frame fuzz_msg; do
	mkdir -p "$OUT/$f.corpus"
	(cd "$OUT" && "./$f" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
		"$f.corpus" 2>"$f.log") || { tail -n 40 "$OUT/$f.log"; exit 1; }
	echo "$f: $(grep -E 'stat::number_of_executed_units' "$OUT/$f.log" | awk '{print $2}') runs in ${secs}s, no crash"
done
[ "${FUZZ_OUT:-}" ] || rm -rf "$OUT"
