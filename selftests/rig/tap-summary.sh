#!/bin/sh
# tap-summary.sh LOG [VMS]: count TAP results in a serial log (all suites
# in it), print them and "N passed, N failed, N skipped"; exit 1 on any
# failure, on no result at all, if the kernel reported a bug, or if fewer
# than VMS (default 1) payloads ran to their end (the rig's /init prints
# "rig: payload exit N" then): a VM that stopped early is a failure.
set -u
log=$1 vms=${2:-1}
pass=$(grep -Ec '^ok [0-9]+' "$log" | head -1)
skip=$(grep -Ec '^ok [0-9]+.*# SKIP' "$log" | head -1)
fail=$(grep -Ec '^not ok [0-9]+' "$log" | head -1)
pass=$((pass - skip))
# Results, and after each failure the diagnostics ("# " lines) the
# test printed after it, up to 200 lines, so that a CI log shows why.
tr -d '\r' < "$log" | awk '
	/^(ok|not ok) [0-9]+/ { print; diag = /^not ok/ ? 200 : 0; next }
	diag > 0 && /^#/ { print; diag--; next }
'
bug=0
if grep -Eq 'BUG:|WARNING:|Oops|Call Trace:|general protection|refcount_t:' "$log"; then
	echo "kernel reported a problem:"
	grep -E -A20 'BUG:|WARNING:|Oops|Call Trace:|general protection|refcount_t:' "$log" | head -60
	bug=1
	fail=$((fail + 1))
fi
grep '^rig: watchdog:' "$log"
ends=$(grep -c '^rig: payload exit' "$log")
if [ "$ends" -lt "$vms" ]; then
	echo "not ok: the test VM stopped before the end of its tests ($ends of $vms payloads ended)"
	echo "# the log's last lines:"
	tr -d '\r' < "$log" | grep -v '^rig: watchdog:' | tail -n 15 | sed 's/^/#   /'
	fail=$((fail + 1))
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ $((pass + skip)) -gt 0 ]
