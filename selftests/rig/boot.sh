#!/bin/sh
# boot.sh INITRD LOG [TIMEOUT_S] [QEMU ARGS...]
#
# Boot the newest installed Debian kernel with INITRD under TCG with
# -cpu max (emulated SVM: kvm-amd loads in the guest). The serial
# console goes to LOG. Returns qemu's status (124 on timeout). One vCPU
# unless RIG_SMP says more: with two, TCG's nested SVM has been seen to
# stall both vCPUs (RCU stalls, soft lockups) on a loaded host.
set -u
initrd=$1 log=$2 limit=${3:-900}
shift 2
[ $# -gt 0 ] && shift
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
exec timeout "$limit" qemu-system-x86_64 -M q35 -cpu max -m 1024 -smp "${RIG_SMP:-1}" \
	-accel tcg,thread=multi -display none -no-reboot -monitor none \
	-serial "file:$log" -kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 quiet panic=-1 oops=panic" "$@"
