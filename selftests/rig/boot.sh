#!/bin/sh
# boot.sh INITRD LOG [TIMEOUT_S] [QEMU ARGS...]
#
# Boot the newest installed Debian kernel with INITRD under TCG with
# -cpu max (emulated SVM: kvm-amd loads in the guest). The serial
# console goes to LOG. Returns qemu's status (124 on timeout). One vCPU
# unless RIG_SMP says more: with two, TCG's nested SVM has been seen to
# stall both vCPUs (RCU stalls, soft lockups) on a loaded host.
#
# Watchdog: with one vCPU the emulator has also been seen, rarely, to
# leave the guest halted with nothing pending (qemu idle, no console
# output, forever). When LOG has not grown for RIG_STALL_S seconds
# (default 240) an NMI is sent through qemu's monitor (a pipe), which
# wakes a halted vCPU; if LOG still does not grow for as long again, the
# VM is stopped (status 125). Both are reported on stderr; the missing
# "rig: payload exit" line then fails tap-summary.sh.
set -u
initrd=$1 log=$2 limit=${3:-900}
shift 2
[ $# -gt 0 ] && shift
stall=${RIG_STALL_S:-240}
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
mon=$(mktemp -d)
trap 'rm -rf "$mon"' EXIT
mkfifo "$mon/m.in" "$mon/m.out"
: > "$log"
timeout "$limit" qemu-system-x86_64 -M q35 -cpu max -m 1024 -smp "${RIG_SMP:-1}" \
	-accel tcg,thread=multi -display none -no-reboot \
	-chardev "pipe,id=mon0,path=$mon/m" -mon chardev=mon0,mode=readline \
	-serial "file:$log" -kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 quiet panic=-1 oops=panic" "$@" &
q=$!
# The monitor's replies are not needed: drain them so it never blocks.
cat "$mon/m.out" > /dev/null 2>&1 &
drain=$!
size=-1 quiet=0 nmi=0 stopped=0
while kill -0 $q 2>/dev/null; do
	sleep 5
	now=$(stat -c %s "$log" 2>/dev/null || echo 0)
	if [ "$now" != "$size" ]; then
		size=$now quiet=0
		continue
	fi
	quiet=$((quiet + 5))
	[ $quiet -ge "$stall" ] || continue
	if [ $nmi = 0 ]; then
		echo "rig: no console output for $quiet s: NMI sent to the VM ($log)" >&2
		echo nmi > "$mon/m.in"
		nmi=1 quiet=0
	else
		echo "rig: still no console output $quiet s after the NMI: VM stopped ($log)" >&2
		stopped=1
		kill $q	# timeout passes SIGTERM on to qemu
		break
	fi
done
rc=0
wait $q || rc=$?
kill $drain 2>/dev/null
[ $stopped = 1 ] && rc=125
exit $rc
