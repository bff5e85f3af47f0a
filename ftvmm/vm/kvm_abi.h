/*
 * kvm_abi.h - the KVM ioctls whose structs end in a flexible array.
 * <linux/kvm.h> declares those with __DECLARE_FLEX_ARRAY, which C++ sizes
 * and lays out differently from C (wrong ioctl numbers, entries at the
 * wrong offset), so they are issued from C (kvm_abi.c).
 */
#ifndef FTVMM_KVM_ABI_H
#define FTVMM_KVM_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVMABI_XSAVE_BYTES 4096	/* legacy struct kvm_xsave */

/* KVM_GET_SUPPORTED_CPUID, minus the local APIC bit, into KVM_SET_CPUID2.
 * 0 or -errno. */
int kvmabi_setup_cpuid(int kvm_fd, int vcpu_fd);
/* MSRs read or written: returns how many succeeded, or -errno. */
int kvmabi_get_msrs(int vcpu_fd, unsigned n, const uint32_t *idx, uint64_t *val);
int kvmabi_set_msrs(int vcpu_fd, unsigned n, const uint32_t *idx, const uint64_t *val);
/* buf: KVMABI_XSAVE_BYTES. 0 or -errno. */
int kvmabi_get_xsave(int vcpu_fd, void *buf);
int kvmabi_set_xsave(int vcpu_fd, const void *buf);

#ifdef __cplusplus
}
#endif
#endif
