/* SPDX-License-Identifier: GPL-2.0 */
/*
 * microvm.h - tiny real-mode KVM guests for the kvm_ft selftests and
 * bench/kmod, in the way KVM's own selftests and crosvm's mmio_and_pio
 * test do it: a few bytes of guest code, a run loop the test drives exit
 * by exit.
 *
 * Guest memory: 32 KiB at GPA 0 (IVT at 0, code at 0x1000, handlers at
 * 0x1100, stack below 0x7000). GPA 0x9000 is not backed: accesses there
 * exit as MMIO.
 */
#ifndef KVM_FT_MICROVM_H
#define KVM_FT_MICROVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#define MVM_MEM_SIZE	0x8000
#define MVM_CODE	0x1000
#define MVM_HANDLER	0x1100
#define MVM_MMIO	0x9000

struct mvm {
	int kvm;		/* /dev/kvm */
	int vm;			/* VM fd */
	int vcpu;		/* vCPU 0 fd */
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
};

/* Create a VM running @code at MVM_CODE in real mode. 0 or -errno. */
int mvm_create(struct mvm *m, const uint8_t *code, size_t len, bool irqchip);
/* Put @handler at MVM_HANDLER and point IVT entry @vector at it. */
void mvm_set_handler(struct mvm *m, int vector, const uint8_t *handler,
		     size_t len);
/* KVM_RUN once; returns run->exit_reason, or -errno. */
int mvm_run(struct mvm *m);
void mvm_destroy(struct mvm *m);

/* Guest: N times "out PORT, al; inc al", then hlt. */
size_t mvm_loop_code(uint8_t *buf, uint8_t port, uint16_t n);
/*
 * Run a loop guest to its hlt; userspace sleeps @delay_us at each exit.
 * Returns the number of port exits seen, or -errno.
 */
long mvm_run_loop(struct mvm *m, unsigned int delay_us);

#endif
