#!/bin/sh
# ftctl lock: usage errors, exit codes and messages (ftctl-lock(8)).
. "$(dirname "$0")/lib.sh"
setup "$1"

# expect CODE PATTERN ARGS...: exit status and a stderr/stdout pattern.
expect()
{
	want=$1 pat=$2
	shift 2
	rc=0
	"$FTCTL" "$@" >"$WORK/x.out" 2>&1 || rc=$?
	[ $rc = "$want" ] || fail "ftctl $*: exit $rc, want $want"
	grep -q -- "$pat" "$WORK/x.out" || fail "ftctl $*: no \"$pat\" in: $(cat "$WORK/x.out")"
}

expect 0 "ftctl lock acquire PATH RESOURCE" lock help
expect 2 "Usage" lock
expect 2 "unknown option" lock show "$AREA" --bogus 1
expect 2 "expected PATH RESOURCE" lock acquire "$AREA"
expect 2 "host-id N is required" lock acquire "$AREA" vm1
expect 2 "out of range" lock acquire "$AREA" vm1 --host-id 9
expect 2 "bad number" lock acquire "$AREA" vm1 --host-id x
expect 2 "bad --timeout" lock acquire "$AREA" vm1 --host-id 1 --timeout -1
expect 2 "lease must be" lock init "$WORK/bad" --lease-ms 100
expect 1 "already holds lock area" lock init "$AREA"
expect 0 "initialised" lock init "$AREA" --force --hosts 8 --resources 64 \
	--renew-ms 100 --io-timeout-ms 200 --lease-ms 800
head -c 4096 /dev/zero >"$WORK/zero"
expect 1 "not a kvm-ft lock area" lock show "$WORK/zero"
expect 1 "No such file" lock show "$WORK/none"
expect 2 "has a blank" lock acquire "$AREA" "a b" --host-id 1
expect 1 "has no claim on vm9" lock release "$AREA" vm9 --host-id 1

# acquire without --hold leaves the claim; release by the same host id
# (after its lease lapses) clears it.
expect 0 "acquired vm1" lock acquire "$AREA" vm1 --host-id 1
"$FTCTL" lock show "$AREA" | grep -q "^resource vm1 host 1 " || fail "claim not shown"
expect 0 "released vm1" lock release "$AREA" vm1 --host-id 1
"$FTCTL" lock show "$AREA" | grep -q "^resource vm1" && fail "claim still shown after release"

# JSON output parses and carries the geometry.
"$FTCTL" -j lock show "$AREA" >"$WORK/j.out"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["hosts"]==8 and d["resources"]==64 and d["lease_ms"]==800, d' "$WORK/j.out" ||
	fail "bad JSON from show"
pass
