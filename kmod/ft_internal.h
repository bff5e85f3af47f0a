/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ft_internal.h - kvm_ft.ko internals shared by its files.
 *
 *   ft_ring.c    per-vCPU single-producer rings (Documentation/ring.md)
 *   ft_vm.c      registry of attached VMs (attachments) and their lifetime
 *   ft_probes.c  probes on kvm.ko's tracepoints, found by name
 *   ft_dev.c     /dev/kvm_ft: ioctls, session fds (mmap, poll)
 *   ft_nl.c      the "kvm_ft" generic netlink family
 *   ft_main.c    module init/exit
 *
 * Probes never see ring internals: they build a record on the stack and
 * call ft_ring_write().
 */
#ifndef KVM_FT_INTERNAL_H
#define KVM_FT_INTERNAL_H

#include <linux/irq_work.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/kvm_ft.h>

struct kvm;
struct task_struct;

#define FT_MAX_VCPUS		64
#define FT_MAX_AREA		(64UL << 20)	/* ring bytes per attachment */

struct ft_ring {
	/* Shared with userspace (in the attachment's vmalloc_user area). */
	struct kvm_ft_ring_ctl *ctl;	/* consumer writes */
	struct kvm_ft_ring_prod *prod;	/* producer writes */
	u8 *data;
	u32 size;			/* data bytes, power of two */
	u32 vcpu;
	/* Producer-private; touched only by the owner of @busy. */
	u64 head;			/* == prod->producer_pos */
	u64 seq;			/* next sequence number */
	u64 pending_lost;		/* dropped since the last LOST record */
	u64 exits;			/* kvm_exit count: record position */
	bool overflowing;		/* overflow event sent, not yet recovered */
	atomic_t busy;			/* FT_BUSY_* while a producer writes */
	/*
	 * Thread that last exited this vCPU and has not re-entered: lets
	 * probes without a vcpu argument (pio, mmio, msr, inj_virq) find
	 * their ring. Compared, never dereferenced.
	 */
	struct task_struct *task;
};

struct ft_vm {
	struct list_head node;		/* ft_vms, RCU; under ft_lock */
	bool listed;			/* under ft_lock */
	u32 id;
	pid_t pid;			/* process to bind (attach by pid) */
	bool persistent;		/* made over netlink */
	struct kvm *kvm;		/* NULL until bound; holds a VM reference */
	struct kref ref;		/* registry + session fds */
	wait_queue_head_t wq;		/* poll() on session fds */
	struct irq_work iw;		/* wakeups and overflow events */
	struct work_struct ev_work;	/* sends overflow/bind events */
	unsigned long ev_pending;	/* FT_EV_* bits */
	DECLARE_BITMAP(overflow_vcpus, FT_MAX_VCPUS);
	atomic64_t unmapped;		/* events of vCPUs without a ring */
	bool appending;			/* the VMM appends: it wakes the consumer */
	u32 nr_vcpus;
	u32 ring_bytes;
	size_t stride;			/* bytes between rings in area */
	void *area;			/* vmalloc_user: all rings */
	size_t area_len;
	struct ft_ring rings[];
};

/* ft_ring.busy: 0 free, else who writes (ft_ring.c) */
#define FT_BUSY_PROBE		1
#define FT_BUSY_APPEND		2

/* ev_pending bits */
#define FT_EVB_BIND		0
#define FT_EVB_OVERFLOW		1

/* ft_ring.c */
int ft_rings_init(struct ft_vm *vm);
bool ft_ring_write(struct ft_vm *vm, struct ft_ring *r,
		   struct kvm_ft_rec_hdr *rec, u32 len);
int ft_ring_append(struct ft_vm *vm, struct ft_ring *r,
		   struct kvm_ft_rec_hdr *rec, u32 len);
bool ft_ring_readable(const struct ft_ring *r);
int ft_rings_mmap(struct ft_vm *vm, struct vm_area_struct *vma);

/* ft_vm.c */
extern struct list_head ft_vms;
bool ft_pid_exists(pid_t pid);
struct ft_vm *ft_vm_create(pid_t pid, struct kvm *kvm, u32 nr_vcpus,
			   u32 ring_bytes, bool persistent);
void ft_vm_detach(struct ft_vm *vm, const char *why);
void ft_vm_put(struct ft_vm *vm);
struct ft_vm *ft_vm_get_by_id(u32 id);
int ft_vm_check_attach(pid_t pid, struct kvm *kvm);
struct ft_vm *ft_vm_by_kvm(struct kvm *kvm);
struct ft_ring *ft_ring_by_task(struct ft_vm **vmp);
void ft_vm_detach_all(void);
int ft_vm_init(void);
void ft_vm_exit(void);
bool ft_kvm_get(struct kvm *kvm);
void ft_kvm_put(struct kvm *kvm);

/* ft_probes.c */
extern u64 ft_features;
int ft_probes_init(void);
void ft_probes_exit(void);

/* ft_dev.c */
int ft_dev_init(void);
void ft_dev_exit(void);
int ft_validate_geometry(u32 *nr_vcpus, u32 *ring_bytes);

/* ft_nl.c */
int ft_nl_init(void);
void ft_nl_exit(void);
void ft_nl_event(u32 type, const struct ft_vm *vm, u32 vcpu, u64 lost);
extern struct mutex ft_lock;

#endif /* KVM_FT_INTERNAL_H */
