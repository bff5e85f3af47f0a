/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ftsession.h - minimal C consumer of kvm_ft session rings for the
 * selftests and bench/kmod (the product's consumer is lib/ring, in C++;
 * this one is deliberately separate so the tests check the ABI, not our
 * library).
 */
#ifndef KVM_FT_FTSESSION_H
#define KVM_FT_FTSESSION_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm_ft.h>

#define FTS_MAX_RECS	65536

struct fts_rec {
	union {
		struct kvm_ft_rec_hdr hdr;
		struct kvm_ft_rec_exit exit;
		struct kvm_ft_rec_entry entry;
		struct kvm_ft_rec_pio pio;
		struct kvm_ft_rec_mmio mmio;
		struct kvm_ft_rec_msr msr;
		struct kvm_ft_rec_inj_virq inj;
		struct kvm_ft_rec_lost lost;
	};
};

struct fts {
	int dev;			/* /dev/kvm_ft */
	int fd;				/* session */
	struct kvm_ft_session_info si;
	uint8_t *map;
	size_t map_len;
	struct fts_rec *recs;		/* drained records, in order */
	size_t nrecs;
	uint64_t lost_in_records;	/* sum of LOST counts */
	uint64_t seq_gaps;		/* seq gaps not covered by LOST */
	uint64_t next_seq;
	int bad;			/* malformed ring contents seen */
};

/* Attach (vm_fd >= 0, or pid) and map; 0 or -errno. */
int fts_attach(struct fts *s, int vm_fd, uint32_t pid, uint32_t nr_vcpus,
	       uint32_t ring_bytes);
/* Open a session on an existing attachment id and map it. */
int fts_open(struct fts *s, uint32_t id);
/* Drain ring @vcpu into s->recs. Returns records drained. */
size_t fts_drain(struct fts *s, uint32_t vcpu);
struct kvm_ft_ring_prod *fts_prod(struct fts *s, uint32_t vcpu);
void fts_close(struct fts *s);
/* Records of the given types only, into out[]; returns how many. */
size_t fts_filter(const struct fts *s, const uint16_t *types, size_t ntypes,
		  const struct fts_rec **out, size_t max);

#endif
