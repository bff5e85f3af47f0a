#!/bin/sh
# Inside the bench VM: load the modules, run the kvm_ft benchmarks.
for m in $(cat /lib/modules/load); do
	case $m in */kvm.ko) insmod /lib/kvm_ft.ko;; esac
	insmod "$m"
done
timeout 600 kvm_ft_bench ${BENCH_ARGS:-3000 5}; echo "bench: exit $?"
