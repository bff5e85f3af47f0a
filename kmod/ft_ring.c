// SPDX-License-Identifier: GPL-2.0
/*
 * ft_ring.c - per-vCPU single-producer rings that userspace maps.
 *
 * Layout (uapi/linux/kvm_ft.h, Documentation/ring.md): an attachment's
 * rings live in one vmalloc_user() area, ring i at i * stride:
 *
 *   +-----------+-----------+---------------------------+ +-----------
 *   | ctl page  | prod page | data (size bytes, 2^n)    | | ring i+1 ...
 *   | user RW   | user RO   | user RO                   | |
 *   +-----------+-----------+---------------------------+ +-----------
 *
 * The consumer owns ctl (consumer_pos, flags); the kernel owns prod and
 * data. Splitting them into pages with different mmap permissions means a
 * buggy or hostile consumer can only confuse its own view: every kernel
 * write position comes from r->head, never from user-writable memory.
 *
 * One producer per ring: the thread running the vCPU, inside KVM_RUN,
 * which KVM's vcpu->mutex serialises. r->busy turns a violation of that
 * (a stale task mapping) into a dropped record instead of corruption.
 *
 * The VMM appends its own records (KVM_FT_APPEND, ft_ring_append()) to
 * the same ring, from any thread, possibly while the vCPU runs. It takes
 * r->busy as FT_BUSY_APPEND with interrupts off, for one memcpy of at
 * most KVM_FT_APPEND_MAX bytes already copied from userspace; a probe
 * that finds FT_BUSY_APPEND spins until it is released instead of
 * dropping its record, and an appender spins on a probe the same way.
 * Both hold busy for a bounded time with interrupts (appender) or
 * preemption (probe) off, so neither spin can deadlock; two probes still
 * never wait for each other. An appended record is never dropped: when
 * it does not fit nothing is written and the caller gets -EAGAIN.
 *
 * Barriers (each names its pair):
 *  (A) smp_load_acquire(ctl->consumer_pos) here pairs with the consumer's
 *      release store of consumer_pos (B'): its reads of a record finish
 *      before we overwrite that space.
 *  (B) smp_store_release(prod->producer_pos) pairs with the consumer's
 *      acquire load of producer_pos (A'): record bytes are visible first.
 *  (C) smp_mb() between publishing and reading ctl->flags, consumer_pos
 *      and read_pos pairs with the consumer's full barrier between
 *      setting KVM_FT_CTL_WAKEUP (after storing consumer_pos or
 *      read_pos) and re-reading producer_pos (C'): either we see WAKEUP
 *      and its positions and wake it, or it sees our record and does not
 *      sleep.
 *
 * We wake only a consumer that asked (WAKEUP) and had read everything
 * before this record: one wakeup per empty-to-non-empty transition, as
 * BPF's ringbuf does, not one per record (each wakeup is an irq_work, a
 * self-IPI on the vCPU's CPU). "Read" is the larger of consumer_pos and
 * read_pos: a read-ahead consumer (ftlogd frees space only when the
 * peer ACKs) says with read_pos how far it has read, so it is woken,
 * and poll() blocks, once it has read everything. Both are the
 * consumer's word, only ever compared: a lying consumer gets wrong
 * wakeups for itself.
 */
#include <linux/poll.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/ktime.h>
#include <linux/string.h>
#include "compat.h"
#include "ft_internal.h"

int ft_rings_init(struct ft_vm *vm)
{
	u32 i;

	vm->stride = KVM_FT_RING_DATA_OFF * PAGE_SIZE + vm->ring_bytes;
	vm->area_len = vm->stride * vm->nr_vcpus;
	vm->area = vmalloc_user(vm->area_len);
	if (!vm->area)
		return -ENOMEM;
	for (i = 0; i < vm->nr_vcpus; i++) {
		struct ft_ring *r = &vm->rings[i];
		u8 *base = (u8 *)vm->area + i * vm->stride;

		r->ctl = (struct kvm_ft_ring_ctl *)base;
		r->prod = (struct kvm_ft_ring_prod *)(base + PAGE_SIZE);
		r->data = base + KVM_FT_RING_DATA_OFF * PAGE_SIZE;
		r->size = vm->ring_bytes;
		r->vcpu = i;
		atomic_set(&r->busy, 0);
		r->prod->magic = KVM_FT_RING_MAGIC;
		r->prod->data_size = vm->ring_bytes;
		r->prod->vcpu = i;
		r->prod->abi_version = KVM_FT_ABI_VERSION;
	}
	return 0;
}

/* Copy one record in, padding the tail if it would wrap. Owner of busy. */
static bool ft_ring_put(struct ft_ring *r, const void *rec, u32 len)
{
	u64 head = r->head, cons, off, pad;

	cons = smp_load_acquire(&r->ctl->consumer_pos);		/* (A) */
	if (cons > head || head - cons > r->size)
		return false;	/* consumer state is nonsense: write nothing */
	off = head & (r->size - 1);
	pad = len > r->size - off ? r->size - off : 0;
	if (head + pad + len - cons > r->size)
		return false;
	if (pad) {
		struct kvm_ft_rec_hdr h = {
			.type = KVM_FT_REC_PAD,
			.len = pad,
			.flags = KVM_FT_RECF_KERNEL,
		};

		memcpy(r->data + off, &h, min_t(u64, pad, sizeof(h)));
		head += pad;
		off = 0;
	}
	memcpy(r->data + off, rec, len);
	r->head = head + len;
	WRITE_ONCE(r->prod->records, r->prod->records + 1);
	smp_store_release(&r->prod->producer_pos, r->head);	/* (B) */
	return true;
}

/*
 * Write the LOST record @r owes, stamped @now: it counts the pending_lost
 * records dropped since the last that fit (the first of them numbered
 * seq - pending_lost). Once it is in, the overflow is over; if it does not
 * fit, it stays owed. Owner of busy.
 */
static void ft_ring_put_lost(struct ft_ring *r, u64 now)
{
	struct kvm_ft_rec_lost l = {
		.hdr.type = KVM_FT_REC_LOST,
		.hdr.flags = KVM_FT_RECF_KERNEL,
		.hdr.len = sizeof(l),
		.hdr.vcpu = r->vcpu,
		.hdr.seq = r->seq - r->pending_lost,
		.hdr.pos = r->exits,
		.hdr.ts_ns = now,
		.count = r->pending_lost,
	};

	if (ft_ring_put(r, &l, sizeof(l))) {
		r->pending_lost = 0;
		r->overflowing = false;
	}
}

/* How far the consumer has read: consumer_pos, or read_pos if beyond. */
static u64 ft_ring_seen(const struct ft_ring *r)
{
	return max(READ_ONCE(r->ctl->consumer_pos), READ_ONCE(r->ctl->read_pos));
}

/*
 * Append @rec (len bytes, header first) to @r. Fills seq, vcpu, ts, flags.
 * Never sleeps, never waits: a record that does not fit is dropped and
 * counted, and a LOST record precedes the next one that fits.
 * Callable from any context with preemption disabled.
 */
bool ft_ring_write(struct ft_vm *vm, struct ft_ring *r,
		   struct kvm_ft_rec_hdr *rec, u32 len)
{
	u64 now = ktime_get_ns();
	u64 start;
	bool ok;

	for (;;) {
		int b = atomic_cmpxchg_acquire(&r->busy, 0, FT_BUSY_PROBE);

		if (!b)
			break;
		if (b != FT_BUSY_APPEND) {
			WRITE_ONCE(r->prod->lost, r->prod->lost + 1);
			return false;	/* second producer: see file comment */
		}
		cpu_relax();		/* an append: bounded, see file comment */
	}
	start = r->head;
	if (r->pending_lost)
		ft_ring_put_lost(r, now);
	rec->flags |= KVM_FT_RECF_KERNEL;
	rec->len = len;
	rec->vcpu = r->vcpu;
	rec->seq = r->seq++;
	rec->pos = r->exits;
	rec->ts_ns = now;
	ok = !r->pending_lost && ft_ring_put(r, rec, len);
	if (!ok) {
		r->pending_lost++;
		WRITE_ONCE(r->prod->lost, r->prod->lost + 1);
		if (!r->overflowing) {
			r->overflowing = true;
			set_bit(r->vcpu, vm->overflow_vcpus);
			set_bit(FT_EVB_OVERFLOW, &vm->ev_pending);
			irq_work_queue(&vm->iw);
		}
	}
	atomic_set_release(&r->busy, 0);

	/*
	 * When the VMM appends to this attachment its appends wake the
	 * consumer (each exit to userspace ends in one): a wakeup here would
	 * be a self-IPI that forces the next guest entry out again, one more
	 * exit and record per wakeup.
	 */
	if (READ_ONCE(vm->appending))
		return ok;
	smp_mb();						/* (C) */
	if (r->head != start && (READ_ONCE(r->ctl->flags) & KVM_FT_CTL_WAKEUP) &&
	    ft_ring_seen(r) == start)
		irq_work_queue(&vm->iw);
	return ok;
}

/*
 * Append a VMM record @rec of @len bytes (checked by the caller, in
 * kernel memory) to @r: seq, vcpu, ts and flags filled, pos and payload
 * kept. 0, or -EAGAIN with nothing of it written when it does not fit
 * (a pending LOST record may have been written before it). Process
 * context; takes busy with interrupts off.
 */
int ft_ring_append(struct ft_vm *vm, struct ft_ring *r,
		   struct kvm_ft_rec_hdr *rec, u32 len)
{
	unsigned long irqf;
	u64 now;
	int ret = 0;

	local_irq_save(irqf);
	while (atomic_cmpxchg_acquire(&r->busy, 0, FT_BUSY_APPEND) != 0)
		cpu_relax();
	now = ktime_get_ns();
	if (r->pending_lost)
		ft_ring_put_lost(r, now);
	rec->flags = 0;
	rec->vcpu = r->vcpu;
	rec->seq = r->seq;
	rec->ts_ns = now;
	if (!r->pending_lost && ft_ring_put(r, rec, len))
		r->seq++;
	else
		ret = -EAGAIN;
	atomic_set_release(&r->busy, 0);
	local_irq_restore(irqf);
	if (!ret)
		WRITE_ONCE(vm->appending, true);

	/*
	 * Wake a consumer that sleeps with records unread: this one and the
	 * probe records since the last append (the probes of an appending
	 * attachment do not wake it). Process context: directly.
	 */
	smp_mb();						/* (C) */
	if ((READ_ONCE(r->ctl->flags) & KVM_FT_CTL_WAKEUP) && ft_ring_readable(r))
		wake_up_interruptible_poll(&vm->wq, EPOLLIN | EPOLLRDNORM);
	return ret;
}

bool ft_ring_readable(const struct ft_ring *r)
{
	return smp_load_acquire(&r->prod->producer_pos) != ft_ring_seen(r);
}

/*
 * mmap of a session fd: any page range of the area. Writable mappings may
 * only cover control pages; read-only ones lose VM_MAYWRITE so mprotect()
 * cannot upgrade them later.
 */
int ft_rings_mmap(struct ft_vm *vm, struct vm_area_struct *vma)
{
	unsigned long npages = vma_pages(vma), i;
	unsigned long total = vm->area_len >> PAGE_SHIFT;
	unsigned long ring_pages = vm->stride >> PAGE_SHIFT;

	if (vma->vm_pgoff >= total || npages > total - vma->vm_pgoff)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_WRITE) {
		for (i = vma->vm_pgoff; i < vma->vm_pgoff + npages; i++)
			if (i % ring_pages != KVM_FT_RING_CTL_OFF)
				return -EPERM;
	} else {
		wrapper_vm_flags_clear(vma, VM_MAYWRITE);
	}
	return remap_vmalloc_range(vma, vm->area, vma->vm_pgoff);
}
