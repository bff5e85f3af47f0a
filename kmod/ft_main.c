// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_ft.ko - capture of KVM VM exits for kvm-ft fault tolerance.
 *
 * Order: the netlink family and the registry first (events need the
 * family), then the device, then the probes; teardown in reverse, so no
 * new attachment can appear once detaching has begun.
 */
#include <linux/module.h>
#include "ft_internal.h"

static int __init kvm_ft_init(void)
{
	int err;

	err = ft_nl_init();
	if (err)
		return err;
	err = ft_vm_init();
	if (err)
		goto err_nl;
	err = ft_dev_init();
	if (err)
		goto err_vm;
	err = ft_probes_init();
	if (err)
		goto err_dev;
	pr_info("kvm_ft: loaded, ABI %d\n", KVM_FT_ABI_VERSION);
	return 0;

err_dev:
	ft_dev_exit();
err_vm:
	ft_vm_exit();
err_nl:
	ft_nl_exit();
	return err;
}

static void __exit kvm_ft_exit(void)
{
	ft_dev_exit();
	ft_probes_exit();
	ft_vm_exit();
	ft_nl_exit();
	pr_info("kvm_ft: unloaded\n");
}

module_init(kvm_ft_init);
module_exit(kvm_ft_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kvm-ft: KVM exit capture rings for fault tolerance");
MODULE_AUTHOR("kvm-ft developers");
