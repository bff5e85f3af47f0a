// SPDX-License-Identifier: GPL-2.0
/*
 * ft_vm.c - the registry of attached VMs ("attachments").
 *
 * An attachment captures the events of one KVM VM into its rings. It is
 * made by a VMM handing over its VM fd (bound at once), or by naming a
 * process (bound by the first probe that sees a vCPU of that process
 * exit). At most one attachment per VM and per process.
 *
 * Lifetime: ft_vms is an RCU list; probes walk it with preemption
 * disabled (tracepoint context), writers hold ft_lock. A bound attachment
 * holds a reference on its struct kvm (users_count), which also pins
 * kvm.ko, so neither can go away under a probe. ft_vm_detach() unlists,
 * waits for every probe (synchronize_rcu), stops the irq_work and event
 * work, drops the VM reference and the registry's kref; the ring area is
 * freed on the last kref put, after every session fd (and so every
 * mapping, which holds the file) is gone.
 *
 * kvm_ft.ko does not link against kvm.ko (it may load first): the one
 * kvm.ko function it calls, kvm_put_kvm(), is looked up with symbol_get()
 * while a VM reference is held, i.e. while kvm.ko cannot unload.
 */
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/rculist.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include "ft_internal.h"

LIST_HEAD(ft_vms);
DEFINE_MUTEX(ft_lock);
static u32 ft_next_id;
static struct delayed_work ft_gone_work;

#define FT_GONE_PERIOD	(HZ / 2)

/* Take a VM reference from any context; fails if the VM is being destroyed. */
bool ft_kvm_get(struct kvm *kvm)
{
	return refcount_inc_not_zero(&kvm->users_count);
}

/* Drop a VM reference; process context. May destroy the VM. */
void ft_kvm_put(struct kvm *kvm)
{
	void (*put)(struct kvm *kvm) = symbol_get(kvm_put_kvm);

	if (WARN_ON_ONCE(!put))
		return;	/* cannot happen: our reference pins kvm.ko */
	put(kvm);
	symbol_put(kvm_put_kvm);
}

static void ft_vm_irq_work(struct irq_work *iw)
{
	struct ft_vm *vm = container_of(iw, struct ft_vm, iw);

	wake_up_interruptible_poll(&vm->wq, EPOLLIN | EPOLLRDNORM);
	if (READ_ONCE(vm->ev_pending))
		schedule_work(&vm->ev_work);
}

static void ft_vm_ev_work(struct work_struct *w)
{
	struct ft_vm *vm = container_of(w, struct ft_vm, ev_work);
	u32 i;

	if (test_and_clear_bit(FT_EVB_BIND, &vm->ev_pending))
		ft_nl_event(KVM_FT_EV_BIND, vm, 0, 0);
	if (test_and_clear_bit(FT_EVB_OVERFLOW, &vm->ev_pending))
		for (i = 0; i < vm->nr_vcpus; i++)
			if (test_and_clear_bit(i, vm->overflow_vcpus))
				ft_nl_event(KVM_FT_EV_OVERFLOW, vm, i,
					    READ_ONCE(vm->rings[i].prod->lost));
}

/* Under ft_lock: -EBUSY if the VM or process is already attached. */
int ft_vm_check_attach(pid_t pid, struct kvm *kvm)
{
	struct ft_vm *vm;

	lockdep_assert_held(&ft_lock);
	list_for_each_entry(vm, &ft_vms, node)
		if ((kvm && READ_ONCE(vm->kvm) == kvm) || (pid && vm->pid == pid))
			return -EBUSY;
	return 0;
}

/*
 * Create and list an attachment. @kvm, if given, must carry a reference
 * for the attachment (it takes ownership). Returns ERR_PTR on failure,
 * else the attachment with one reference for the caller besides the
 * registry's.
 */
/* Whether pid names a process in the caller's pid namespace. */
bool ft_pid_exists(pid_t pid)
{
	bool found;

	rcu_read_lock();
	found = find_vpid(pid) != NULL;
	rcu_read_unlock();
	return found;
}

struct ft_vm *ft_vm_create(pid_t pid, struct kvm *kvm, u32 nr_vcpus,
			   u32 ring_bytes, bool persistent)
{
	struct ft_vm *vm;
	int err;

	vm = kzalloc(struct_size(vm, rings, nr_vcpus), GFP_KERNEL);
	if (!vm)
		return ERR_PTR(-ENOMEM);
	vm->pid = pid;
	vm->persistent = persistent;
	vm->nr_vcpus = nr_vcpus;
	vm->ring_bytes = ring_bytes;
	kref_init(&vm->ref);		/* the registry's */
	init_waitqueue_head(&vm->wq);
	init_irq_work(&vm->iw, ft_vm_irq_work);
	INIT_WORK(&vm->ev_work, ft_vm_ev_work);
	atomic64_set(&vm->unmapped, 0);
	err = ft_rings_init(vm);
	if (err)
		goto err_free;

	mutex_lock(&ft_lock);
	err = ft_vm_check_attach(pid, kvm);
	if (err) {
		mutex_unlock(&ft_lock);
		goto err_area;
	}
	vm->id = ++ft_next_id;
	vm->kvm = kvm;
	vm->listed = true;
	kref_get(&vm->ref);		/* the caller's */
	list_add_tail_rcu(&vm->node, &ft_vms);
	mutex_unlock(&ft_lock);
	ft_nl_event(KVM_FT_EV_ATTACH, vm, 0, 0);
	return vm;

err_area:
	vfree(vm->area);
err_free:
	kfree(vm);
	return ERR_PTR(err);
}

static void ft_vm_release(struct kref *ref)
{
	struct ft_vm *vm = container_of(ref, struct ft_vm, ref);

	vfree(vm->area);
	kfree(vm);
}

void ft_vm_put(struct ft_vm *vm)
{
	kref_put(&vm->ref, ft_vm_release);
}

/* Unlist and stop capture; idempotent. Process context, may sleep. */
void ft_vm_detach(struct ft_vm *vm, const char *why)
{
	struct kvm *kvm;

	mutex_lock(&ft_lock);
	if (!vm->listed) {
		mutex_unlock(&ft_lock);
		return;
	}
	vm->listed = false;
	list_del_rcu(&vm->node);
	mutex_unlock(&ft_lock);

	synchronize_rcu();	/* no probe sees vm any more, none can bind it */
	irq_work_sync(&vm->iw);
	cancel_work_sync(&vm->ev_work);
	kvm = xchg(&vm->kvm, NULL);
	if (kvm)
		ft_kvm_put(kvm);
	pr_debug("kvm_ft: detached VM %u (%s)\n", vm->id, why);
	ft_nl_event(KVM_FT_EV_DETACH, vm, 0, 0);
	wake_up_interruptible_poll(&vm->wq, EPOLLHUP);
	ft_vm_put(vm);
}

/* A new reference on the listed attachment @id, or NULL. */
struct ft_vm *ft_vm_get_by_id(u32 id)
{
	struct ft_vm *vm, *found = NULL;

	mutex_lock(&ft_lock);
	list_for_each_entry(vm, &ft_vms, node)
		if (vm->id == id) {
			kref_get(&vm->ref);
			found = vm;
			break;
		}
	mutex_unlock(&ft_lock);
	return found;
}

/*
 * Probe context (preemption disabled): the attachment capturing @kvm,
 * binding an attachment waiting for the current process if there is one.
 */
struct ft_vm *ft_vm_by_kvm(struct kvm *kvm)
{
	struct ft_vm *vm;
	pid_t tgid = current->tgid;

	list_for_each_entry_rcu(vm, &ft_vms, node) {
		struct kvm *k = READ_ONCE(vm->kvm);

		if (k == kvm)
			return vm;
		if (!k && vm->pid == tgid) {
			if (!ft_kvm_get(kvm))
				return NULL;
			if (cmpxchg(&vm->kvm, NULL, kvm) != NULL) {
				/* Lost a race; the VM runs, so not the last ref. */
				refcount_dec(&kvm->users_count);
				continue;
			}
			set_bit(FT_EVB_BIND, &vm->ev_pending);
			irq_work_queue(&vm->iw);
			return vm;
		}
	}
	return NULL;
}

/*
 * Probe context: the ring of the vCPU the current thread is handling
 * (between its kvm_exit and its next kvm_entry), or NULL.
 */
struct ft_ring *ft_ring_by_task(struct ft_vm **vmp)
{
	struct ft_vm *vm;
	u32 i;

	list_for_each_entry_rcu(vm, &ft_vms, node) {
		if (!READ_ONCE(vm->kvm))
			continue;
		for (i = 0; i < vm->nr_vcpus; i++)
			if (READ_ONCE(vm->rings[i].task) == current) {
				*vmp = vm;
				return &vm->rings[i];
			}
	}
	return NULL;
}

/*
 * Detach attachments whose VM only we keep alive (its process closed it
 * or exited): capture of a dead VM helps nobody, and holding it would
 * keep its memory.
 */
static void ft_gone_fn(struct work_struct *w)
{
	struct ft_vm *vm, *gone;

	do {
		gone = NULL;
		mutex_lock(&ft_lock);
		list_for_each_entry(vm, &ft_vms, node) {
			struct kvm *k = READ_ONCE(vm->kvm);

			if (k && refcount_read(&k->users_count) == 1) {
				kref_get(&vm->ref);
				gone = vm;
				break;
			}
		}
		mutex_unlock(&ft_lock);
		if (gone) {
			ft_vm_detach(gone, "VM gone");
			ft_vm_put(gone);
		}
	} while (gone);
	schedule_delayed_work(&ft_gone_work, FT_GONE_PERIOD);
}

void ft_vm_detach_all(void)
{
	struct ft_vm *vm;

	for (;;) {
		mutex_lock(&ft_lock);
		vm = list_first_entry_or_null(&ft_vms, struct ft_vm, node);
		if (vm)
			kref_get(&vm->ref);
		mutex_unlock(&ft_lock);
		if (!vm)
			break;
		ft_vm_detach(vm, "module unload");
		ft_vm_put(vm);
	}
}

int ft_vm_init(void)
{
	INIT_DELAYED_WORK(&ft_gone_work, ft_gone_fn);
	schedule_delayed_work(&ft_gone_work, FT_GONE_PERIOD);
	return 0;
}

void ft_vm_exit(void)
{
	cancel_delayed_work_sync(&ft_gone_work);
	ft_vm_detach_all();
}
