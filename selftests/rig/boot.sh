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
# VM is stopped (status 125). Before each step it reads the vCPU's
# registers through the monitor and how busy qemu was, to tell a guest
# spinning with interrupts off from a halted emulator (the kernel runs
# with nokaslr: a RIP can be found in /proc/kallsyms of another boot;
# Debian's System.map is empty). All this goes to
# stderr and, once qemu has exited, to the end of LOG ("rig: watchdog:
# ..."), which tap-summary.sh prints; the missing "rig: payload exit"
# line fails it.
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
	-append "console=ttyS0 quiet panic=-1 oops=panic nokaslr" "$@" &
q=$!
# The monitor's replies, read when the watchdog asks something.
cat "$mon/m.out" > "$mon/replies" 2>&1 &
drain=$!

# vcpu_state: one line: the vCPU's RIP, RFLAGS, CPL, whether it is
# halted, and qemu's CPU use over 5 s.
vcpu_state() {
	: > "$mon/replies"
	echo "info registers" > "$mon/m.in"
	qemu=$(pgrep -P $q qemu-system-x86 | head -n 1)
	t0=$(awk '{print $14 + $15}' "/proc/$qemu/stat" 2>/dev/null || echo 0)
	sleep 5
	t1=$(awk '{print $14 + $15}' "/proc/$qemu/stat" 2>/dev/null || echo 0)
	regs=$(tr -d '\r' < "$mon/replies")
	rip=$(echo "$regs" | sed -n 's/.*RIP=\([0-9a-f]*\).*/\1/p' | head -n 1)
	rfl=$(echo "$regs" | sed -n 's/.*RFL=\([0-9a-f]*\).*/\1/p' | head -n 1)
	hlt=$(echo "$regs" | sed -n 's/.* CPL=\([0-3]\).* HLT=\([01]\).*/CPL \1 HLT \2/p' | head -n 1)
	echo "RIP $rip RFLAGS $rfl $hlt, qemu $(( (t1 - t0) * 100 / 5 / $(getconf CLK_TCK) ))% busy"
}
size=-1 quiet=0 nmi=0 stopped=0 said=""
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
		said="rig: watchdog: no console output for $quiet s (at $(date +%T)): $(vcpu_state); NMI sent"
		echo "$said ($log)" >&2
		echo nmi > "$mon/m.in"
		nmi=1 quiet=0
	else
		said="$said
rig: watchdog: still no console output $quiet s after the NMI: $(vcpu_state); VM stopped"
		echo "rig: watchdog: VM stopped ($log)" >&2
		stopped=1
		kill $q	# timeout passes SIGTERM on to qemu
		break
	fi
done
rc=0
wait $q || rc=$?
kill $drain 2>/dev/null
[ -n "$said" ] && printf '\n%s\n' "$said" >> "$log"
[ $stopped = 1 ] && rc=125
exit $rc
