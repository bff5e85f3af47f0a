/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvm_ft_vmm.h - the FT log records written by ftvmm (types 0x100..0x1ff)
 * and the log / snapshot file format.
 *
 * Every record begins with struct kvm_ft_rec_hdr (linux/kvm_ft.h); hdr.pos
 * is the vCPU's execution position: the count of its deterministic exits
 * (port I/O, MMIO, HLT, requested interrupt-window exits) since the VM
 * started. Fixed-width types only; reserved fields are written as zero and
 * readers reject non-zero ones. Documentation/log-format.md is the prose
 * reference.
 *
 * Per deterministic exit the log holds, in this order:
 *   VMM_EXIT (reason, RIP), then for port I/O a KVM_FT_REC_PIO and for MMIO
 *   a KVM_FT_REC_MMIO record with the value the VMM returned or the guest
 *   wrote, then VMM_DATA if an input was longer than 8 bytes, then for a
 *   virtio-blk QueueNotify one VMM_BLK_READ per chunk of disk data read.
 * Between two exits, the things the VMM did before re-entering the guest,
 * all with hdr.pos = position of the last exit:
 *   CKPT_BEGIN .. CKPT_END (a checkpoint), NET_SENT, DISK_WRITTEN, NET_RX,
 *   IRQ_WINDOW, IRQ, END, GO_LIVE.
 */
#ifndef _UAPI_LINUX_KVM_FT_VMM_H
#define _UAPI_LINUX_KVM_FT_VMM_H

#include <linux/types.h>
#include <linux/kvm_ft.h>

enum kvm_ft_vmm_rec_type {
	KVM_FT_REC_VMM_EXIT = KVM_FT_REC_VMM_FIRST,	/* struct kvm_ft_vmm_exit */
	KVM_FT_REC_VMM_DATA,		/* struct kvm_ft_vmm_data + bytes */
	KVM_FT_REC_VMM_IRQ,		/* struct kvm_ft_vmm_irq: injected */
	KVM_FT_REC_VMM_IRQ_WINDOW,	/* struct kvm_ft_vmm_irq: window requested */
	KVM_FT_REC_VMM_CKPT_BEGIN,	/* struct kvm_ft_vmm_ckpt */
	KVM_FT_REC_VMM_CKPT_PAGE,	/* struct kvm_ft_vmm_page + page bytes */
	KVM_FT_REC_VMM_CKPT_CPU,	/* struct kvm_ft_vmm_cpu + KVM structs */
	KVM_FT_REC_VMM_CKPT_DEV,	/* struct kvm_ft_vmm_dev + device state */
	KVM_FT_REC_VMM_CKPT_END,	/* struct kvm_ft_vmm_ckpt */
	KVM_FT_REC_VMM_END,		/* struct kvm_ft_vmm_end: guest ended */
	KVM_FT_REC_VMM_GO_LIVE,		/* struct kvm_ft_vmm_end: replay ended,
					 * the replayer became the primary */
	KVM_FT_REC_VMM_BLK_READ,	/* struct kvm_ft_vmm_blk_read + data */
	KVM_FT_REC_VMM_START,		/* struct kvm_ft_vmm_start: first record
					 * of a log shipped live */
	KVM_FT_REC_VMM_EPOCH_BEGIN,	/* struct kvm_ft_vmm_epoch: SMP epoch */
	KVM_FT_REC_VMM_EPOCH_END,	/* struct kvm_ft_vmm_epoch: it is complete */
	KVM_FT_REC_VMM_NET_RX,		/* struct kvm_ft_vmm_net_rx + frame: a
					 * frame the guest received */
	KVM_FT_REC_VMM_NET_SENT,	/* struct kvm_ft_vmm_net_sent: frames the
					 * primary has put on the wire */
	KVM_FT_REC_VMM_DISK_WRITTEN,	/* struct kvm_ft_vmm_disk_written: disk
					 * writes the primary's file holds */
	__KVM_FT_REC_VMM_LAST,

	/*
	 * A capture-format record (type 1..0x3f: the PIO and MMIO records
	 * ftvmm writes for I/O exits) that ftvmm appended to a kvm_ft.ko
	 * ring, where only VMM types are accepted (KVM_FT_APPEND): type
	 * VMM_WRAP_FIRST + capture type, layout unchanged. The live
	 * replayer turns it back into the capture type.
	 */
	KVM_FT_REC_VMM_WRAP_FIRST = KVM_FT_REC_VMM_FIRST + 0xc0,
	KVM_FT_REC_VMM_WRAP_LAST = KVM_FT_REC_VMM_FIRST + 0xff,
};

/* A deterministic exit, checked by the replayer. */
struct kvm_ft_vmm_exit {
	struct kvm_ft_rec_hdr hdr;
	__u32 reason;		/* KVM_EXIT_* (linux/kvm.h) */
	__u32 reserved;		/* zero */
	__u64 rip;		/* guest RIP reported with the exit */
};

/* Input bytes of the exit at hdr.pos (string IN, wide MMIO reads). */
struct kvm_ft_vmm_data {
	struct kvm_ft_rec_hdr hdr;
	__u32 bytes;		/* bytes following this struct */
	__u32 reserved;		/* zero */
	/* __u8 data[bytes], then zero padding to a multiple of 8 */
};

/*
 * First record of a log shipped live through ftlogd (pos 0): what the
 * secondary must run to replay it. A log file says the same in its
 * file header.
 */
struct kvm_ft_vmm_start {
	struct kvm_ft_rec_hdr hdr;
	__u64 mem_bytes;	/* guest RAM */
	__u64 image_hash;	/* FNV-1a 64 of the image (as the file header) */
	__u64 disk_bytes;	/* virtio-blk capacity, 0 without a disk */
	__u32 nr_vcpus;		/* 1..8 */
	__u32 flags;		/* KVM_FT_START_* */
};

/* start.flags */
#define KVM_FT_START_NET	1	/* the VM has virtio-net */

/*
 * SMP (nr_vcpus > 1): the log is checkpoints only, one per epoch:
 *   EPOCH_BEGIN, CKPT_PAGE..., nr_vcpus CKPT_CPU (vCPU 0, 1, ... in
 *   order), CKPT_DEV..., DATA... (the console bytes the guest wrote in
 *   the epoch, at most 4 KiB per record), EPOCH_END
 * all with hdr.pos = epoch number. An epoch without its EPOCH_END is
 * incomplete and never applied. Epoch 0 is FULL (every non-zero page);
 * the others DELTA (pages dirtied since the previous epoch). END follows
 * the last epoch when the guest ended.
 */
struct kvm_ft_vmm_epoch {
	struct kvm_ft_rec_hdr hdr;
	__u64 number;		/* epochs before this one */
	__u32 kind;		/* KVM_FT_CKPT_FULL or _DELTA */
	__u32 nr_vcpus;		/* CKPT_CPU records in the epoch */
	__u32 pages;		/* CKPT_PAGE records (END; 0 in BEGIN) */
	__u32 reserved;		/* zero */
	__u64 mem_hash;		/* END: FNV-1a 64 of all RAM once applied,
				 * 0 = not computed (BEGIN: 0) */
	__u64 console_bytes;	/* END: console bytes the guest wrote
				 * before the epoch's end (BEGIN: 0) */
};

/*
 * Disk data a virtio-blk read returned at the QueueNotify exit hdr.pos, in
 * the order the device read it; one record per chunk of at most 16 KiB.
 */
struct kvm_ft_vmm_blk_read {
	struct kvm_ft_rec_hdr hdr;
	__u64 sector;		/* first 512-byte sector */
	__u32 bytes;		/* data bytes following, a multiple of 512 */
	__u32 reserved;		/* zero */
	/* __u8 data[bytes] */
};

struct kvm_ft_vmm_net_rx {
	struct kvm_ft_rec_hdr hdr;
	__u32 bytes;		/* frame bytes following (14..1514) */
	__u32 reserved;		/* zero */
	/* __u8 frame[bytes], zero-padded to 8 */
};

/*
 * The frames the primary has put on the wire (its tap), so that a
 * secondary going live does not send them again. One field, read by the
 * log's replication mode:
 *   sent_pos     record/replay (1 vCPU): an execution position; every
 *                frame the guest sent at a position <= sent_pos was sent.
 *   sent_frames  epochs (SMP, between epochs): a count of frames; every
 *                frame with sequence number < sent_frames was sent.
 */
struct kvm_ft_vmm_net_sent {
	struct kvm_ft_rec_hdr hdr;
	union {
		__u64 sent_pos;		/* record/replay: a position */
		__u64 sent_frames;	/* epochs: a frame count */
	};
};

/*
 * The primary's disk file holds (written and synced) every virtio-blk
 * write the guest issued at an execution position <= written_pos; a
 * replayer on the same file (shared storage) drops those from the writes
 * it keeps for go-live. written_pos <= hdr.pos.
 */
struct kvm_ft_vmm_disk_written {
	struct kvm_ft_rec_hdr hdr;
	__u64 written_pos;
};

struct kvm_ft_vmm_irq {
	struct kvm_ft_rec_hdr hdr;
	__u32 vector;		/* IDT vector (IRQ) or 0 (IRQ_WINDOW) */
	__u32 reserved;		/* zero */
};

/* ckpt.kind */
#define KVM_FT_CKPT_DELTA	1	/* pages dirtied since the previous one */
#define KVM_FT_CKPT_FULL	2	/* every non-zero page of RAM */

struct kvm_ft_vmm_ckpt {
	struct kvm_ft_rec_hdr hdr;
	__u32 kind;		/* KVM_FT_CKPT_* */
	__u32 pages;		/* CKPT_PAGE records in this checkpoint (END) */
	__u64 number;		/* checkpoints written before this one */
};

struct kvm_ft_vmm_page {
	struct kvm_ft_rec_hdr hdr;
	__u64 gpa;		/* guest physical address, page aligned */
	/* __u8 data[page_size] */
};

/*
 * vCPU state: the KVM x86 structs, each starting 8-byte aligned, in this
 * order: struct kvm_regs, kvm_sregs, kvm_xcrs, kvm_vcpu_events,
 * kvm_debugregs, the XSAVE area (xsave_bytes), then nr_msrs struct
 * kvm_msr_entry. The sizes are recorded so a reader can check them.
 */
struct kvm_ft_vmm_cpu {
	struct kvm_ft_rec_hdr hdr;
	__u32 regs_bytes;	/* sizeof(struct kvm_regs) */
	__u32 sregs_bytes;	/* sizeof(struct kvm_sregs) */
	__u32 xcrs_bytes;	/* sizeof(struct kvm_xcrs) */
	__u32 events_bytes;	/* sizeof(struct kvm_vcpu_events) */
	__u32 debugregs_bytes;	/* sizeof(struct kvm_debugregs) */
	__u32 xsave_bytes;	/* XSAVE area, bytes */
	__u32 nr_msrs;		/* struct kvm_msr_entry that follow */
	__u32 reserved;		/* zero */
};

/* dev.id */
enum kvm_ft_vmm_dev_id {
	KVM_FT_DEV_ENGINE = 1,	/* VMM run state (window request) */
	KVM_FT_DEV_PIC,		/* 8259A pair */
	KVM_FT_DEV_PIT,		/* 8254 */
	KVM_FT_DEV_UART,	/* 16550 at 0x3f8 */
	KVM_FT_DEV_RTC,		/* CMOS RTC */
	KVM_FT_DEV_VIRTIO_BLK,	/* virtio-mmio block device and its
				 * pending writes */
	KVM_FT_DEV_VIRTIO_NET,	/* virtio-mmio network device and its
				 * held frames */
	__KVM_FT_DEV_LAST,
};

struct kvm_ft_vmm_dev {
	struct kvm_ft_rec_hdr hdr;
	__u32 id;		/* enum kvm_ft_vmm_dev_id */
	__u32 bytes;		/* state bytes following (log-format.md) */
};

struct kvm_ft_vmm_end {
	struct kvm_ft_rec_hdr hdr;
	__u32 status;		/* process exit status of the VM */
	__u32 reserved;		/* zero */
};

/*
 * Files
 * -----
 * A log, snapshot or delta file is a struct kvm_ft_vmm_file_hdr followed
 * by frames: struct kvm_ft_vmm_frame, then frame.len bytes holding one
 * record (frame.len == hdr.len). A frame whose CRC does not match, or a
 * file ending inside a frame, is an error reported with its offset.
 */
#define KVM_FT_VMM_FILE_MAGIC	0x474f4c5446564d4bULL	/* "KMVFTLOG" */
#define KVM_FT_VMM_FILE_VERSION	1

enum kvm_ft_vmm_file_kind {
	KVM_FT_FILE_LOG = 1,	/* record/replay log */
	KVM_FT_FILE_SNAPSHOT,	/* one full checkpoint */
	KVM_FT_FILE_DELTA,	/* one delta checkpoint, parent_id's child */
	__KVM_FT_FILE_LAST,
};

struct kvm_ft_vmm_file_hdr {
	__u64 magic;		/* KVM_FT_VMM_FILE_MAGIC */
	__u32 version;		/* KVM_FT_VMM_FILE_VERSION */
	__u32 kind;		/* enum kvm_ft_vmm_file_kind */
	__u64 mem_bytes;	/* guest RAM, bytes */
	__u32 nr_vcpus;		/* vCPUs */
	__u32 page_size;	/* bytes per CKPT_PAGE */
	__u64 image_hash;	/* FNV-1a 64 of the guest image file */
	__u64 id;		/* random id of this file */
	__u64 parent_id;	/* id of the file this delta applies to */
	__u32 flags;		/* KVM_FT_VMM_FILE_F_*; zero so far */
	__u32 hdr_crc;		/* CRC32C of the bytes before this field */
};

struct kvm_ft_vmm_frame {
	__u32 len;		/* record bytes that follow */
	__u32 crc;		/* CRC32C of those bytes */
};

#endif /* _UAPI_LINUX_KVM_FT_VMM_H */
