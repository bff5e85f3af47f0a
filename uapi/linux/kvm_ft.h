/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvm_ft.h - userspace ABI of kvm-ft: the FT log ring, the log record
 * formats, the /dev/kvm_ft ioctls and the "kvm_ft" generic netlink family.
 *
 * Shared by kvm_ft.ko and every userspace program (ftvmm, ftlogd, ftctl).
 * Fixed-width types only; every reserved field must be zero (the kernel
 * rejects non-zero ones with -EINVAL so they can be given a meaning later);
 * new abilities are announced by KVM_FT_FEAT_* bits, not by version checks.
 * Documentation/uapi.md is the prose reference; Documentation/ring.md the
 * ring protocol.
 */
#ifndef _UAPI_LINUX_KVM_FT_H
#define _UAPI_LINUX_KVM_FT_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define KVM_FT_ABI_VERSION	1	/* bumped only on incompatible change */
#define KVM_FT_DEVICE		"/dev/kvm_ft"

/* Feature bits (KVM_FT_GET_INFO.features, KVM_FT_A_FEATURES) */
#define KVM_FT_FEAT_RING	(1ULL << 0)	/* per-vCPU mmap rings */
#define KVM_FT_FEAT_EXIT	(1ULL << 1)	/* EXIT records */
#define KVM_FT_FEAT_EXIT_REASON	(1ULL << 2)	/* EXIT.reason is filled */
#define KVM_FT_FEAT_PIO		(1ULL << 3)	/* PIO records */
#define KVM_FT_FEAT_MMIO	(1ULL << 4)	/* MMIO records */
#define KVM_FT_FEAT_MSR		(1ULL << 5)	/* MSR records */
#define KVM_FT_FEAT_INJ_VIRQ	(1ULL << 6)	/* INJ_VIRQ records */
#define KVM_FT_FEAT_ENTRY	(1ULL << 7)	/* ENTRY records */
#define KVM_FT_FEAT_ATTACH_PID	(1ULL << 8)	/* attach by process id */
#define KVM_FT_FEAT_APPEND	(1ULL << 9)	/* KVM_FT_APPEND on session fds */

/*
 * The ring
 * --------
 * One ring per vCPU, one producer (the thread running that vCPU, or the
 * VMM when capture is done in userspace), one consumer. A ring is three
 * areas laid out back to back in the mapping, each page-aligned:
 *
 *   offset 0          control page   struct kvm_ft_ring_ctl   consumer RW
 *   offset PAGE       producer page  struct kvm_ft_ring_prod  consumer RO
 *   offset 2*PAGE     data           data_size bytes (2^n)    consumer RO
 *
 * Positions are free-running byte counts (never wrap in practice); a
 * record at position p lives at data[p & (data_size - 1)]. Records are
 * 8-byte aligned and never wrap: when a record does not fit before the
 * end of the data area the producer fills the tail with a PAD record.
 * Every record starts with struct kvm_ft_rec_hdr; a PAD may be as short
 * as 8 bytes (only type, flags and len are valid then).
 *
 * Producer: write record bytes, then smp_store_release(&prod->producer_pos).
 * Consumer: smp_load_acquire(&prod->producer_pos), read records, then
 *           smp_store_release(&ctl->consumer_pos).
 * The producer reads consumer_pos with acquire to know the free space and
 * drops the record (lost++, then a LOST record as soon as one fits) when
 * it does not fit: the producer never waits.
 * Wakeups: a consumer that wants to sleep sets ctl->flags |= WAKEUP,
 * issues a full barrier, re-reads producer_pos, and sleeps in poll() only
 * if still empty. The producer, after publishing, issues a full barrier
 * and reads ctl->flags, consumer_pos and read_pos; if WAKEUP is set and
 * the consumer had read everything before this record (the larger of
 * consumer_pos and read_pos is the record's start), it wakes poll(). The
 * two full barriers pair (store-buffer pattern): one side always sees
 * the other. A read-ahead consumer stores read_pos before it sets WAKEUP.
 */
#define KVM_FT_RING_CTL_OFF	0		/* in pages */
#define KVM_FT_RING_PROD_OFF	1		/* in pages */
#define KVM_FT_RING_DATA_OFF	2		/* in pages */
#define KVM_FT_RING_MIN_DATA	(1U << 12)	/* bytes */
#define KVM_FT_RING_MAX_DATA	(1U << 24)	/* bytes */
#define KVM_FT_RING_DEF_DATA	(1U << 18)	/* bytes */

#define KVM_FT_RING_MAGIC	0x4654524eU	/* "FTRN" */

/* ctl->flags */
#define KVM_FT_CTL_WAKEUP	(1U << 0)	/* consumer sleeps: wake it */

struct kvm_ft_ring_ctl {
	__u64 consumer_pos;	/* bytes consumed; written by the consumer */
	__u32 flags;		/* KVM_FT_CTL_*; written by the consumer */
	__u32 reserved0;	/* must be zero */
	__u64 ack_pos;		/* FT log position the peer acknowledged
				 * (output rule, written by ftlogd) */
	__u64 read_pos;		/* how far a read-ahead consumer has read:
				 * ftlogd reads past consumer_pos and frees
				 * space only on ACK. 0: not used. Wakeups
				 * and poll() go by the larger of the two */
	__u64 reserved[4];	/* must be zero */
};

struct kvm_ft_ring_prod {
	__u64 producer_pos;	/* bytes published; written by the producer */
	__u64 lost;		/* records dropped since attach, total */
	__u64 records;		/* records published since attach */
	__u32 magic;		/* KVM_FT_RING_MAGIC */
	__u32 data_size;	/* bytes in the data area, power of two */
	__u32 vcpu;		/* vCPU index this ring belongs to */
	__u32 abi_version;	/* KVM_FT_ABI_VERSION */
	/*
	 * Output rule figures, written by the VMM that holds the outputs
	 * waiting for this ring's records (ftvmm as the producer of a memfd
	 * ring; ring 0 of its set). An output is one guest console byte,
	 * network frame or disk write.
	 * Single writer, each field a store-release; a reader load-acquires
	 * each one and may see them from slightly different moments.
	 * kvm_ft.ko holds no output and leaves them zero.
	 */
	__u64 outputs_held;	/* outputs waiting for their ACK now */
	__u64 outputs_released;	/* outputs released after their ACK, total */
	__u64 hold_ns_total;	/* sum of the hold times of the released
				 * outputs (CLOCK_MONOTONIC ns, output to
				 * release) */
};

/*
 * Log records
 * -----------
 * Types 1..0xff come from exit capture (kvm_ft.ko, or ftvmm when the
 * module is absent), 0x100..0x1ff from the VMM (device input, interrupt
 * delivery, checkpoints), 0x200..0x2ff are FT control records.
 */
enum kvm_ft_rec_type {
	KVM_FT_REC_PAD		= 1,	/* filler up to the end of the data area */
	KVM_FT_REC_LOST		= 2,	/* struct kvm_ft_rec_lost */
	KVM_FT_REC_EXIT		= 3,	/* struct kvm_ft_rec_exit */
	KVM_FT_REC_ENTRY	= 4,	/* struct kvm_ft_rec_entry */
	KVM_FT_REC_PIO		= 5,	/* struct kvm_ft_rec_pio */
	KVM_FT_REC_MMIO		= 6,	/* struct kvm_ft_rec_mmio */
	KVM_FT_REC_MSR		= 7,	/* struct kvm_ft_rec_msr */
	KVM_FT_REC_INJ_VIRQ	= 8,	/* struct kvm_ft_rec_inj_virq */
	__KVM_FT_REC_CAPTURE_LAST,

	KVM_FT_REC_VMM_FIRST	= 0x100,	/* defined by ftvmm: Documentation/log-format.md */
	KVM_FT_REC_CTRL_FIRST	= 0x200,	/* defined by ftlogd: Documentation/log-format.md */
	KVM_FT_REC_TYPE_MAX	= 0x2ff,
};

/* hdr.flags */
#define KVM_FT_RECF_KERNEL	(1U << 0)	/* written by kvm_ft.ko */

struct kvm_ft_rec_hdr {
	__u16 type;		/* enum kvm_ft_rec_type */
	__u16 flags;		/* KVM_FT_RECF_* */
	__u32 len;		/* bytes, header included, multiple of 8 */
	__u32 vcpu;		/* vCPU index */
	__u32 reserved;		/* zero */
	__u64 seq;		/* per-ring sequence number from 0; a LOST
				 * record accounts for every gap */
	__u64 pos;		/* execution position: exits of this vCPU
				 * counted since capture began (Documentation/ring.md) */
	__u64 ts_ns;		/* CLOCK_MONOTONIC time of capture, ns */
};

struct kvm_ft_rec_lost {
	struct kvm_ft_rec_hdr hdr;
	__u64 count;		/* records dropped just before this one */
};

/* ISA of an exit (as kvm_exit's isa argument) */
#define KVM_FT_ISA_VMX		1
#define KVM_FT_ISA_SVM		2
#define KVM_FT_EXIT_REASON_UNKNOWN	0xffffffffU

struct kvm_ft_rec_exit {
	struct kvm_ft_rec_hdr hdr;
	__u32 reason;		/* VMX basic exit reason or SVM exit code;
				 * KVM_FT_EXIT_REASON_UNKNOWN if unavailable */
	__u32 isa;		/* KVM_FT_ISA_* */
	__u64 rip;		/* guest RIP at the exit */
	__u64 info1;		/* VMX exit qualification / SVM EXITINFO1 */
	__u64 info2;		/* VMX 0 / SVM EXITINFO2 */
};

struct kvm_ft_rec_entry {
	struct kvm_ft_rec_hdr hdr;
	__u64 rip;		/* guest RIP about to run (0 if not cached) */
	__u32 immediate_exit;	/* 1 if KVM forces an immediate exit */
	__u32 reserved;		/* zero */
};

#define KVM_FT_DIR_IN		0	/* guest reads (port in, MMIO/MSR read) */
#define KVM_FT_DIR_OUT		1	/* guest writes */

struct kvm_ft_rec_pio {
	struct kvm_ft_rec_hdr hdr;
	__u16 port;		/* I/O port */
	__u8 size;		/* bytes per access: 1, 2 or 4 */
	__u8 dir;		/* KVM_FT_DIR_* */
	__u32 count;		/* repetitions (string I/O), >= 1 */
	__u64 value;		/* first element's value, zero-extended */
};

struct kvm_ft_rec_mmio {
	struct kvm_ft_rec_hdr hdr;
	__u64 gpa;		/* guest physical address */
	__u32 len;		/* bytes, 1..8 */
	__u8 dir;		/* KVM_FT_DIR_* */
	__u8 reserved[3];	/* zero */
	__u64 value;		/* bytes read or written, little endian */
};

struct kvm_ft_rec_msr {
	struct kvm_ft_rec_hdr hdr;
	__u32 index;		/* MSR number (ECX) */
	__u8 dir;		/* KVM_FT_DIR_IN = rdmsr, _OUT = wrmsr */
	__u8 exception;		/* 1 if the access raised #GP */
	__u16 reserved;		/* zero */
	__u64 value;		/* value read or written */
};

struct kvm_ft_rec_inj_virq {
	struct kvm_ft_rec_hdr hdr;
	__u32 vector;		/* interrupt vector injected */
	__u8 soft;		/* 1 for a soft interrupt (INTn) */
	__u8 reinjected;	/* 1 if re-injected after a failed delivery */
	__u16 reserved;		/* zero */
};

/*
 * ioctls on /dev/kvm_ft
 * ---------------------
 * KVM_FT_GET_INFO      fill struct kvm_ft_info.
 * KVM_FT_ATTACH        attach capture to one VM, either the VM whose fd
 *                      the caller passes (vm_fd >= 0, the VMM path) or the
 *                      first VM seen running in process pid (CAP_SYS_ADMIN).
 *                      Returns a new session fd: mmap it to read the rings
 *                      (ring i at offset i * ring_stride), poll it to wait.
 *                      Closing the session fd detaches.
 * KVM_FT_OPEN          open a session fd on an attachment made over
 *                      generic netlink (CAP_SYS_ADMIN); closing it does
 *                      not detach.
 * On a session fd:
 * KVM_FT_SESSION_INFO  fill struct kvm_ft_session_info.
 * KVM_FT_APPEND        append one VMM record (type in [VMM_FIRST,
 *                      CTRL_FIRST)) to ring vcpu, in order with the
 *                      probes' records. The kernel fills hdr.seq, vcpu,
 *                      ts_ns and flags (0: no KVM_FT_RECF_KERNEL); it
 *                      keeps hdr.pos and the payload. hdr.len == len,
 *                      a multiple of 8, in [sizeof(hdr), APPEND_MAX] and
 *                      at most half the ring (-E2BIG beyond). Never
 *                      dropped: no room -> -EAGAIN, nothing written;
 *                      retry once the consumer has freed space (the
 *                      kernel is not told when that happens, so there is
 *                      no POLLOUT). Only the session that made the
 *                      attachment (KVM_FT_ATTACH) or CAP_SYS_ADMIN may
 *                      append (-EPERM). Malformed: -EINVAL, bad pointer
 *                      -EFAULT, attachment gone -ENODEV.
 */
struct kvm_ft_info {
	__u32 abi_version;	/* KVM_FT_ABI_VERSION */
	__u32 reserved0;	/* zero */
	__u64 features;		/* KVM_FT_FEAT_* */
	__u32 max_vcpus;	/* most vCPUs one attachment captures */
	__u32 page_size;	/* bytes */
	__u64 reserved[4];	/* zero on output */
};

struct kvm_ft_attach {
	__s32 vm_fd;		/* KVM VM fd, or -1 to attach by pid */
	__u32 pid;		/* process id when vm_fd == -1, else 0 */
	__u32 nr_vcpus;		/* rings to create, 1..max_vcpus; 0 = 1 */
	__u32 ring_bytes;	/* data bytes per ring, power of two in
				 * [RING_MIN_DATA, RING_MAX_DATA]; 0 = DEF */
	__u64 reserved[4];	/* must be zero */
};

struct kvm_ft_open {
	__u32 id;		/* attachment id (KVM_FT_A_VM_ID) */
	__u32 reserved0;	/* must be zero */
	__u64 reserved[3];	/* must be zero */
};

struct kvm_ft_session_info {
	__u32 id;		/* attachment id */
	__u32 nr_vcpus;		/* rings */
	__u32 ring_bytes;	/* data bytes per ring */
	__u32 reserved0;	/* zero */
	__u64 ring_stride;	/* bytes between two rings in the mapping */
	__u32 pid;		/* process owning the VM, 0 until bound */
	__u32 bound;		/* 1 once the VM is known */
	__u64 reserved[4];	/* zero */
};

#define KVM_FT_APPEND_MAX	(64U << 10)	/* bytes, one appended record */

struct kvm_ft_append {
	__u32 vcpu;		/* ring index, < nr_vcpus */
	__u32 len;		/* bytes at rec, == the record's hdr.len */
	__u64 rec;		/* user pointer: struct kvm_ft_rec_hdr + payload */
	__u64 reserved[2];	/* must be zero */
};

#define KVM_FT_IOC_MAGIC	0xf7
#define KVM_FT_GET_INFO		_IOR(KVM_FT_IOC_MAGIC, 0x00, struct kvm_ft_info)
#define KVM_FT_ATTACH		_IOW(KVM_FT_IOC_MAGIC, 0x01, struct kvm_ft_attach)
#define KVM_FT_OPEN		_IOW(KVM_FT_IOC_MAGIC, 0x02, struct kvm_ft_open)
#define KVM_FT_SESSION_INFO	_IOR(KVM_FT_IOC_MAGIC, 0x03, struct kvm_ft_session_info)
#define KVM_FT_APPEND		_IOW(KVM_FT_IOC_MAGIC, 0x04, struct kvm_ft_append)

/*
 * Generic netlink family "kvm_ft"
 * -------------------------------
 * GET_INFO    -> VERSION, FEATURES, MAX_VCPUS
 * LIST_VMS    dump: one message per attachment: VM_ID, PID, BOUND,
 *             PERSISTENT, NR_VCPUS, RING_BYTES, nested RINGS, one nest per ring of
 *             RSTAT_VCPU, RSTAT_RECORDS, RSTAT_BYTES, RSTAT_LOST
 * ATTACH      PID [NR_VCPUS] [RING_BYTES] (admin) -> VM_ID. A persistent
 *             attachment: it lasts until DETACH, until its VM is gone,
 *             or until the module unloads.
 * DETACH      VM_ID (admin)
 * Multicast group "events": EVENT messages with EVENT_TYPE, VM_ID, PID
 * and for overflow VCPU and LOST.
 */
#define KVM_FT_GENL_NAME	"kvm_ft"
#define KVM_FT_GENL_VERSION	1
#define KVM_FT_GENL_MCGRP	"events"

enum kvm_ft_cmd {
	KVM_FT_CMD_UNSPEC,
	KVM_FT_CMD_GET_INFO,
	KVM_FT_CMD_LIST_VMS,
	KVM_FT_CMD_ATTACH,
	KVM_FT_CMD_DETACH,
	KVM_FT_CMD_EVENT,	/* notification only */
	__KVM_FT_CMD_MAX,
	KVM_FT_CMD_MAX = __KVM_FT_CMD_MAX - 1,
};

enum kvm_ft_attr {
	KVM_FT_A_UNSPEC,
	KVM_FT_A_VERSION,	/* u32 */
	KVM_FT_A_FEATURES,	/* u64 */
	KVM_FT_A_MAX_VCPUS,	/* u32 */
	KVM_FT_A_VM_ID,		/* u32 */
	KVM_FT_A_PID,		/* u32 */
	KVM_FT_A_BOUND,		/* u8 */
	KVM_FT_A_PERSISTENT,	/* u8 */
	KVM_FT_A_NR_VCPUS,	/* u32 */
	KVM_FT_A_RING_BYTES,	/* u32 */
	KVM_FT_A_RINGS,		/* nested: one nest per ring of KVM_FT_A_RSTAT_* */
	KVM_FT_A_EVENT_TYPE,	/* u32, enum kvm_ft_event */
	KVM_FT_A_VCPU,		/* u32 */
	KVM_FT_A_LOST,		/* u64 */
	KVM_FT_A_PAD,		/* for 64-bit alignment */
	__KVM_FT_A_MAX,
	KVM_FT_A_MAX = __KVM_FT_A_MAX - 1,
};

enum kvm_ft_rstat_attr {
	KVM_FT_A_RSTAT_UNSPEC,
	KVM_FT_A_RSTAT_VCPU,	/* u32 */
	KVM_FT_A_RSTAT_RECORDS,	/* u64, records published */
	KVM_FT_A_RSTAT_BYTES,	/* u64, bytes published */
	KVM_FT_A_RSTAT_LOST,	/* u64, records dropped */
	KVM_FT_A_RSTAT_PAD,
	__KVM_FT_A_RSTAT_MAX,
	KVM_FT_A_RSTAT_MAX = __KVM_FT_A_RSTAT_MAX - 1,
};

enum kvm_ft_event {
	KVM_FT_EV_ATTACH = 1,	/* attachment created */
	KVM_FT_EV_BIND,		/* attach by pid found its VM */
	KVM_FT_EV_DETACH,	/* attachment removed */
	KVM_FT_EV_OVERFLOW,	/* a ring started dropping records */
	__KVM_FT_EV_MAX,
};

#endif /* _UAPI_LINUX_KVM_FT_H */
