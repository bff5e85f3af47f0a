// SPDX-License-Identifier: GPL-2.0
/*
 * ft_nl.c - the "kvm_ft" generic netlink family (uapi/linux/kvm_ft.h).
 *
 * Every command is strictly validated (resv_start_op = first command):
 * unknown attributes, wrong attribute sizes and non-zero reserved header
 * fields are refused by the netlink core; semantic errors get an extack
 * message here. State-changing commands need CAP_NET_ADMIN
 * (GENL_ADMIN_PERM) and, since they expose another process's VM,
 * CAP_SYS_ADMIN as well.
 */
#include <linux/capability.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <net/genetlink.h>
#include "ft_internal.h"

static struct genl_family ft_genl;

static struct netlink_range_validation ft_ring_bytes_range = {
	.min = KVM_FT_RING_MIN_DATA,
	.max = KVM_FT_RING_MAX_DATA,
};

static const struct nla_policy ft_policy[KVM_FT_A_MAX + 1] = {
	[KVM_FT_A_VM_ID]	= { .type = NLA_U32 },
	[KVM_FT_A_PID]		= NLA_POLICY_MIN(NLA_U32, 1),
	[KVM_FT_A_NR_VCPUS]	= NLA_POLICY_RANGE(NLA_U32, 1, FT_MAX_VCPUS),
	[KVM_FT_A_RING_BYTES]	= NLA_POLICY_FULL_RANGE(NLA_U32,
						  &ft_ring_bytes_range),
};

enum { FT_MCGRP_EVENTS };

static const struct genl_multicast_group ft_mcgrps[] = {
	[FT_MCGRP_EVENTS] = { .name = KVM_FT_GENL_MCGRP },
};

static int ft_nl_put_vm(struct sk_buff *skb, const struct ft_vm *vm)
{
	struct nlattr *rings, *ring;
	u32 i;

	if (nla_put_u32(skb, KVM_FT_A_VM_ID, vm->id) ||
	    nla_put_u32(skb, KVM_FT_A_PID, vm->pid) ||
	    nla_put_u8(skb, KVM_FT_A_BOUND, READ_ONCE(vm->kvm) != NULL) ||
	    nla_put_u8(skb, KVM_FT_A_PERSISTENT, vm->persistent) ||
	    nla_put_u32(skb, KVM_FT_A_NR_VCPUS, vm->nr_vcpus) ||
	    nla_put_u32(skb, KVM_FT_A_RING_BYTES, vm->ring_bytes))
		return -EMSGSIZE;
	rings = nla_nest_start(skb, KVM_FT_A_RINGS);
	if (!rings)
		return -EMSGSIZE;
	for (i = 0; i < vm->nr_vcpus; i++) {
		const struct kvm_ft_ring_prod *p = vm->rings[i].prod;

		ring = nla_nest_start(skb, i + 1);
		if (!ring ||
		    nla_put_u32(skb, KVM_FT_A_RSTAT_VCPU, i) ||
		    nla_put_u64_64bit(skb, KVM_FT_A_RSTAT_RECORDS,
				      READ_ONCE(p->records), KVM_FT_A_RSTAT_PAD) ||
		    nla_put_u64_64bit(skb, KVM_FT_A_RSTAT_BYTES,
				      READ_ONCE(p->producer_pos), KVM_FT_A_RSTAT_PAD) ||
		    nla_put_u64_64bit(skb, KVM_FT_A_RSTAT_LOST,
				      READ_ONCE(p->lost), KVM_FT_A_RSTAT_PAD))
			return -EMSGSIZE;
		nla_nest_end(skb, ring);
	}
	nla_nest_end(skb, rings);
	return 0;
}

static int ft_nl_get_info(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &ft_genl, 0, KVM_FT_CMD_GET_INFO);
	if (!hdr ||
	    nla_put_u32(msg, KVM_FT_A_VERSION, KVM_FT_ABI_VERSION) ||
	    nla_put_u64_64bit(msg, KVM_FT_A_FEATURES, READ_ONCE(ft_features),
			      KVM_FT_A_PAD) ||
	    nla_put_u32(msg, KVM_FT_A_MAX_VCPUS, FT_MAX_VCPUS)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/* Dump: cb->args[0] is the id of the last attachment sent. */
static int ft_nl_list_vms(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct ft_vm *vm;
	void *hdr;
	int err = 0;

	mutex_lock(&ft_lock);
	list_for_each_entry(vm, &ft_vms, node) {
		if (vm->id <= cb->args[0])
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &ft_genl, NLM_F_MULTI,
				  KVM_FT_CMD_LIST_VMS);
		if (!hdr) {
			err = -EMSGSIZE;
			break;
		}
		if (ft_nl_put_vm(skb, vm)) {
			genlmsg_cancel(skb, hdr);
			err = -EMSGSIZE;
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0] = vm->id;
	}
	mutex_unlock(&ft_lock);
	if (err == -EMSGSIZE && skb->len)
		return skb->len;	/* more to come */
	return err ? err : skb->len;
}

static int ft_nl_attach(struct sk_buff *skb, struct genl_info *info)
{
	u32 nr = 0, bytes = 0, pid;
	struct sk_buff *msg;
	struct ft_vm *vm;
	void *hdr;
	int err;

	if (!netlink_capable(skb, CAP_SYS_ADMIN)) {
		NL_SET_ERR_MSG(info->extack, "attaching needs CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (GENL_REQ_ATTR_CHECK(info, KVM_FT_A_PID)) {
		NL_SET_ERR_MSG(info->extack, "a PID attribute is required");
		return -EINVAL;
	}
	pid = nla_get_u32(info->attrs[KVM_FT_A_PID]);
	if (info->attrs[KVM_FT_A_NR_VCPUS])
		nr = nla_get_u32(info->attrs[KVM_FT_A_NR_VCPUS]);
	if (info->attrs[KVM_FT_A_RING_BYTES])
		bytes = nla_get_u32(info->attrs[KVM_FT_A_RING_BYTES]);
	err = ft_validate_geometry(&nr, &bytes);
	if (err) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVM_FT_A_RING_BYTES],
				    "ring bytes must be a power of two of whole pages, and all rings at most 64 MiB");
		return err;
	}
	if (!ft_pid_exists(pid)) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVM_FT_A_PID],
				    "no such process");
		return -ESRCH;
	}
	vm = ft_vm_create(pid, NULL, nr, bytes, true);
	if (IS_ERR(vm)) {
		if (PTR_ERR(vm) == -EBUSY)
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVM_FT_A_PID],
					    "this process is already attached");
		else
			NL_SET_ERR_MSG(info->extack, "cannot allocate rings");
		return PTR_ERR(vm);
	}
	err = -ENOMEM;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		goto err_detach;
	hdr = genlmsg_put_reply(msg, info, &ft_genl, 0, KVM_FT_CMD_ATTACH);
	if (!hdr || ft_nl_put_vm(msg, vm)) {
		nlmsg_free(msg);
		err = -EMSGSIZE;
		goto err_detach;
	}
	genlmsg_end(msg, hdr);
	ft_vm_put(vm);
	return genlmsg_reply(msg, info);

err_detach:
	ft_vm_detach(vm, "attach failed");
	ft_vm_put(vm);
	return err;
}

static int ft_nl_detach(struct sk_buff *skb, struct genl_info *info)
{
	struct ft_vm *vm;

	if (!netlink_capable(skb, CAP_SYS_ADMIN)) {
		NL_SET_ERR_MSG(info->extack, "detaching needs CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (GENL_REQ_ATTR_CHECK(info, KVM_FT_A_VM_ID)) {
		NL_SET_ERR_MSG(info->extack, "a VM_ID attribute is required");
		return -EINVAL;
	}
	vm = ft_vm_get_by_id(nla_get_u32(info->attrs[KVM_FT_A_VM_ID]));
	if (!vm) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVM_FT_A_VM_ID],
				    "no attachment with this id");
		return -ENOENT;
	}
	ft_vm_detach(vm, "netlink");
	ft_vm_put(vm);
	return 0;
}

static const struct genl_ops ft_ops[] = {
	{
		.cmd = KVM_FT_CMD_GET_INFO,
		.doit = ft_nl_get_info,
	},
	{
		.cmd = KVM_FT_CMD_LIST_VMS,
		.dumpit = ft_nl_list_vms,
	},
	{
		.cmd = KVM_FT_CMD_ATTACH,
		.doit = ft_nl_attach,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = KVM_FT_CMD_DETACH,
		.doit = ft_nl_detach,
		.flags = GENL_ADMIN_PERM,
	},
};

static struct genl_family ft_genl __ro_after_init = {
	.name = KVM_FT_GENL_NAME,
	.version = KVM_FT_GENL_VERSION,
	.maxattr = KVM_FT_A_MAX,
	.policy = ft_policy,
	.module = THIS_MODULE,
	.ops = ft_ops,
	.n_ops = ARRAY_SIZE(ft_ops),
	.resv_start_op = KVM_FT_CMD_GET_INFO,
	.mcgrps = ft_mcgrps,
	.n_mcgrps = ARRAY_SIZE(ft_mcgrps),
};

/* Multicast an event; process context. Best effort: no listener is fine. */
void ft_nl_event(u32 type, const struct ft_vm *vm, u32 vcpu, u64 lost)
{
	struct sk_buff *msg;
	void *hdr;

	if (!genl_has_listeners(&ft_genl, &init_net, FT_MCGRP_EVENTS))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &ft_genl, 0, KVM_FT_CMD_EVENT);
	if (!hdr ||
	    nla_put_u32(msg, KVM_FT_A_EVENT_TYPE, type) ||
	    nla_put_u32(msg, KVM_FT_A_VM_ID, vm->id) ||
	    nla_put_u32(msg, KVM_FT_A_PID, vm->pid) ||
	    (type == KVM_FT_EV_OVERFLOW &&
	     (nla_put_u32(msg, KVM_FT_A_VCPU, vcpu) ||
	      nla_put_u64_64bit(msg, KVM_FT_A_LOST, lost, KVM_FT_A_PAD)))) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast(&ft_genl, msg, 0, FT_MCGRP_EVENTS, GFP_KERNEL);
}

int ft_nl_init(void)
{
	return genl_register_family(&ft_genl);
}

void ft_nl_exit(void)
{
	genl_unregister_family(&ft_genl);
}
