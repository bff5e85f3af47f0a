#!/bin/sh
# vm_host_b.sh - payload of test VM "b" (run_two_vms.sh): while a holds
# vm1, b's acquire times out; once a's holder is frozen past its lease,
# b takes vm1 over.
for m in $(cat /lib/modules/load); do insmod "$m" 2>/dev/null; done
n=0
ok() { n=$((n + 1)); echo "ok $n b: $1"; }
notok() { n=$((n + 1)); echo "not ok $n b: $1"; }
for _ in $(seq 1 100); do [ -b /dev/vda ] && break; sleep 0.1; done
for _ in $(seq 1 600); do
	ftctl -j lock show /dev/vda 2>/dev/null | grep -q '"host_id":1,"resource":"vm1"' && break
	sleep 0.1
done
ftctl lock acquire /dev/vda vm1 --host-id 2 --timeout 8 > /tmp/try1.out 2>&1
rc=$?
sed 's/^/# b: /' /tmp/try1.out
if [ $rc -eq 3 ]; then ok "times out (3) while a holds vm1"; else notok "times out while a holds vm1 (status $rc)"; fi
ftctl lock acquire /dev/vda vm1 --host-id 2 --timeout 90 > /tmp/try2.out 2>&1
rc=$?
sed 's/^/# b: /' /tmp/try2.out
if [ $rc -eq 0 ] && grep -q "acquired vm1" /tmp/try2.out; then
	ok "takes vm1 over from the frozen a"
else
	notok "takes vm1 over from the frozen a (status $rc)"
fi
echo "1..$n"
