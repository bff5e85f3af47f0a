// SPDX-License-Identifier: GPL-2.0
/* microvm.c - see microvm.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "microvm.h"

int mvm_create(struct mvm *m, const uint8_t *code, size_t len, bool irqchip)
{
	struct kvm_userspace_memory_region region = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };
	int err;

	memset(m, 0, sizeof(*m));
	m->kvm = m->vm = m->vcpu = -1;
	m->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (m->kvm < 0)
		return -errno;
	m->vm = ioctl(m->kvm, KVM_CREATE_VM, 0);
	if (m->vm < 0)
		goto fail;
	m->mem = mmap(NULL, MVM_MEM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->mem == MAP_FAILED) {
		m->mem = NULL;
		goto fail;
	}
	memcpy(m->mem + MVM_CODE, code, len);
	region.memory_size = MVM_MEM_SIZE;
	region.userspace_addr = (uintptr_t)m->mem;
	if (ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		goto fail;
	if (irqchip && ioctl(m->vm, KVM_CREATE_IRQCHIP, 0) < 0)
		goto fail;
	m->vcpu = ioctl(m->vm, KVM_CREATE_VCPU, 0);
	if (m->vcpu < 0)
		goto fail;
	m->run_size = ioctl(m->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	m->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      m->vcpu, 0);
	if (m->run == MAP_FAILED) {
		m->run = NULL;
		goto fail;
	}
	if (ioctl(m->vcpu, KVM_GET_SREGS, &sregs) < 0)
		goto fail;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = sregs.es.base = sregs.ss.base = 0;
	sregs.ds.selector = sregs.es.selector = sregs.ss.selector = 0;
	if (ioctl(m->vcpu, KVM_SET_SREGS, &sregs) < 0)
		goto fail;
	regs.rip = MVM_CODE;
	regs.rsp = 0x7000;
	regs.rflags = 2;
	if (ioctl(m->vcpu, KVM_SET_REGS, &regs) < 0)
		goto fail;
	return 0;
fail:
	err = -errno;
	mvm_destroy(m);
	return err;
}

void mvm_set_handler(struct mvm *m, int vector, const uint8_t *handler,
		     size_t len)
{
	uint16_t ivt[2] = { MVM_HANDLER, 0 };

	memcpy(m->mem + MVM_HANDLER, handler, len);
	memcpy(m->mem + vector * 4, ivt, sizeof(ivt));
}

int mvm_run(struct mvm *m)
{
	if (ioctl(m->vcpu, KVM_RUN, 0) < 0)
		return -errno;
	return m->run->exit_reason;
}

void mvm_destroy(struct mvm *m)
{
	if (m->run)
		munmap(m->run, m->run_size);
	if (m->vcpu >= 0)
		close(m->vcpu);
	if (m->vm >= 0)
		close(m->vm);
	if (m->kvm >= 0)
		close(m->kvm);
	if (m->mem)
		munmap(m->mem, MVM_MEM_SIZE);
	memset(m, 0, sizeof(*m));
	m->kvm = m->vm = m->vcpu = -1;
}

size_t mvm_loop_code(uint8_t *buf, uint8_t port, uint16_t n)
{
	const uint8_t code[] = {
		0xb9, n & 0xff, n >> 8,	/* mov cx, n */
		0xe6, port,		/* 1: out port, al */
		0xfe, 0xc0,		/* inc al */
		0xe2, 0xfa,		/* loop 1b */
		0xf4,			/* hlt */
	};

	memcpy(buf, code, sizeof(code));
	return sizeof(code);
}

long mvm_run_loop(struct mvm *m, unsigned int delay_us)
{
	long outs = 0;
	int r;

	for (;;) {
		r = mvm_run(m);
		if (r < 0) {
			if (r == -EINTR)
				continue;
			return r;
		}
		if (r == KVM_EXIT_HLT)
			return outs;
		if (r != KVM_EXIT_IO)
			return -EPROTO;
		outs++;
		if (delay_us)
			usleep(delay_us);
	}
}
