/* kvm_abi.c - KVM ioctls with flexible-array structs (kvm_abi.h). */
#include "vm/kvm_abi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

_Static_assert(sizeof(struct kvm_xsave) == KVMABI_XSAVE_BYTES, "kvm_xsave size");

int kvmabi_setup_cpuid(int kvm_fd, int vcpu_fd)
{
	const unsigned max = 256;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	int r = 0;
	if (!c)
		return -ENOMEM;
	c->nent = max;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		r = -errno;
		goto out;
	}
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].edx &= ~(1u << 9); /* no local APIC */
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0)
		r = -errno;
out:
	free(c);
	return r;
}

static struct kvm_msrs *msr_buf(unsigned n, const uint32_t *idx, const uint64_t *val)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	if (!m)
		return NULL;
	m->nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		m->entries[i].index = idx[i];
		if (val)
			m->entries[i].data = val[i];
	}
	return m;
}

int kvmabi_get_msrs(int vcpu_fd, unsigned n, const uint32_t *idx, uint64_t *val)
{
	struct kvm_msrs *m = msr_buf(n, idx, NULL);
	if (!m)
		return -ENOMEM;
	int r = ioctl(vcpu_fd, KVM_GET_MSRS, m);
	if (r < 0)
		r = -errno;
	for (int i = 0; i < r; i++)
		val[i] = m->entries[i].data;
	free(m);
	return r;
}

int kvmabi_set_msrs(int vcpu_fd, unsigned n, const uint32_t *idx, const uint64_t *val)
{
	struct kvm_msrs *m = msr_buf(n, idx, val);
	if (!m)
		return -ENOMEM;
	int r = ioctl(vcpu_fd, KVM_SET_MSRS, m);
	if (r < 0)
		r = -errno;
	free(m);
	return r;
}

int kvmabi_get_xsave(int vcpu_fd, void *buf)
{
	return ioctl(vcpu_fd, KVM_GET_XSAVE, buf) < 0 ? -errno : 0;
}

int kvmabi_set_xsave(int vcpu_fd, const void *buf)
{
	return ioctl(vcpu_fd, KVM_SET_XSAVE, buf) < 0 ? -errno : 0;
}
