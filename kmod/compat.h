/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compat.h - kernel version differences, kept out of the core.
 *
 * Supported: Debian 12's 6.1 kernels. Each wrapper names the version
 * where the difference appeared.
 */
#ifndef KVM_FT_COMPAT_H
#define KVM_FT_COMPAT_H

#include <linux/version.h>
#include <linux/kprobes.h>
#include <linux/mm.h>

/*
 * kvm_entry gained "bool force_immediate_exit" in 6.1.153 (backport of
 * 6.9's change). Debian 12 ships 6.1.19x. The probe always takes the
 * bool; for older kernels a wrapper without it would be needed.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 153)
#error "kvm_ft needs the kvm_entry(vcpu, force_immediate_exit) tracepoint (6.1.153+)"
#endif

/* vm_flags_clear() arrived in 6.3; before, vm_flags is written directly. */
static inline void wrapper_vm_flags_clear(struct vm_area_struct *vma,
					  unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

/*
 * kallsyms_lookup_name() is not exported since 5.7. Its address is where
 * a kprobe on it lands: register one, read kp.addr, unregister it.
 * Returns the function, or NULL when it cannot be probed (no kprobes or
 * no kallsyms). Process context: register_kprobe() sleeps.
 */
typedef unsigned long (*wrapper_kallsyms_lookup_name_t)(const char *name);

static inline wrapper_kallsyms_lookup_name_t wrapper_get_kallsyms_lookup_name(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	wrapper_kallsyms_lookup_name_t fn;

	if (register_kprobe(&kp) < 0)
		return NULL;
	fn = (wrapper_kallsyms_lookup_name_t)kp.addr;
	unregister_kprobe(&kp);
	return fn;
}

#endif /* KVM_FT_COMPAT_H */
