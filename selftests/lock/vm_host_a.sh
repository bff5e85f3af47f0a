#!/bin/sh
# vm_host_a.sh - payload of test VM "a" (run_two_vms.sh): holds vm1 on the
# shared disk, freezes its holder past the lease, resumes it, and checks
# that the holder notices the loss and stops (prints "lost", exit 4).
for m in $(cat /lib/modules/load); do insmod "$m" 2>/dev/null; done
n=0
ok() { n=$((n + 1)); echo "ok $n a: $1"; }
notok() { n=$((n + 1)); echo "not ok $n a: $1"; }
for _ in $(seq 1 100); do [ -b /dev/vda ] && break; sleep 0.1; done
ftctl lock acquire /dev/vda vm1 --host-id 1 --hold > /tmp/hold.out 2>&1 &
h=$!
for _ in $(seq 1 600); do grep -q "acquired vm1" /tmp/hold.out && break; sleep 0.1; done
if grep -q "acquired vm1" /tmp/hold.out; then ok "acquires vm1"; else notok "acquires vm1"; fi
sleep 30			# b tries meanwhile, and must fail
kill -STOP $h
echo "# a: holder frozen"
sleep 45			# b takes over meanwhile
kill -CONT $h
wait $h
rc=$?
cat /tmp/hold.out | sed 's/^/# a: /'
if [ $rc -eq 4 ] && grep -q "^lost vm1" /tmp/hold.out; then
	ok "frozen holder resumes, says lost, exits 4"
else
	notok "frozen holder resumes, says lost, exits 4 (status $rc)"
fi
echo "1..$n"
