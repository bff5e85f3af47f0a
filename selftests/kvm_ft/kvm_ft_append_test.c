// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_ft_append_test - KVM_FT_APPEND: the VMM's own records in the
 * kernel ring, in order with the probes' records.
 *
 *  bad_forms      every malformed request fails with its errno and
 *                 writes nothing
 *  interleaved    records appended at each exit sit between that exit's
 *                 probe records and the next exit's, seq consecutive,
 *                 pos and payload kept, no KVM_FT_RECF_KERNEL
 *  full_ring      a full ring refuses with EAGAIN and writes nothing;
 *                 after the consumer frees space the append succeeds and
 *                 nothing was lost
 *  thread_stress  a thread appends while the vCPU runs: every record of
 *                 both producers arrives whole, in order, none lost
 *
 * Needs /dev/kvm and /dev/kvm_ft; SKIPs with the reason otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "kselftest_harness.h"
#include "ftsession.h"
#include "microvm.h"
#include "ft_test.h"

#define REC_TYPE	(KVM_FT_REC_VMM_FIRST + 0xf0)	/* a VMM type */

struct vrec {
	struct kvm_ft_rec_hdr hdr;
	uint64_t value;
};

static int append(int fd, uint32_t vcpu, void *rec, uint32_t len)
{
	struct kvm_ft_append a = {
		.vcpu = vcpu, .len = len, .rec = (uintptr_t)rec,
	};

	return ioctl(fd, KVM_FT_APPEND, &a) ? -errno : 0;
}

static void mkrec(struct vrec *r, uint64_t pos, uint64_t value)
{
	memset(r, 0, sizeof(*r));
	r->hdr.type = REC_TYPE;
	r->hdr.len = sizeof(*r);
	r->hdr.pos = pos;
	r->hdr.seq = 12345;		/* the kernel overwrites it */
	r->hdr.flags = KVM_FT_RECF_KERNEL;	/* and this */
	r->value = value;
}

static uint64_t produced(struct fts *s)
{
	return __atomic_load_n(&fts_prod(s, 0)->producer_pos, __ATOMIC_ACQUIRE);
}

TEST(bad_forms)
{
	uint8_t big[KVM_FT_APPEND_MAX + 16] = { 0 };
	struct kvm_ft_append a;
	struct vrec r;
	struct fts s;
	struct mvm m;
	void *gone;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, (const uint8_t[]){ 0xf4 }, 1, false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, KVM_FT_RING_MIN_DATA));

	mkrec(&r, 0, 1);
	r.hdr.type = KVM_FT_REC_PIO;		/* capture type */
	EXPECT_EQ(-EINVAL, append(s.fd, 0, &r, sizeof(r)));
	r.hdr.type = KVM_FT_REC_CTRL_FIRST;	/* ftlogd's */
	EXPECT_EQ(-EINVAL, append(s.fd, 0, &r, sizeof(r)));
	r.hdr.type = KVM_FT_REC_VMM_FIRST - 1;
	EXPECT_EQ(-EINVAL, append(s.fd, 0, &r, sizeof(r)));

	mkrec(&r, 0, 1);
	r.hdr.len = 8;
	EXPECT_EQ(-EINVAL, append(s.fd, 0, &r, 8));		/* < header */
	mkrec(&r, 0, 1);
	EXPECT_EQ(-EINVAL, append(s.fd, 0, &r, sizeof(r) - 4));	/* not 8-aligned */
	EXPECT_EQ(-EINVAL, append(s.fd, 0, &r, sizeof(r) - 8));	/* != hdr.len */
	r.hdr.len = sizeof(r) + 8;
	EXPECT_EQ(-EINVAL, append(s.fd, 0, &r, sizeof(r)));	/* != hdr.len */
	/* Over half the ring, and over the maximum. */
	((struct kvm_ft_rec_hdr *)big)->type = REC_TYPE;
	((struct kvm_ft_rec_hdr *)big)->len = KVM_FT_RING_MIN_DATA / 2 + 8;
	EXPECT_EQ(-E2BIG, append(s.fd, 0, big, KVM_FT_RING_MIN_DATA / 2 + 8));
	((struct kvm_ft_rec_hdr *)big)->len = KVM_FT_APPEND_MAX + 8;
	EXPECT_EQ(-E2BIG, append(s.fd, 0, big, KVM_FT_APPEND_MAX + 8));

	mkrec(&r, 0, 1);
	EXPECT_EQ(-EINVAL, append(s.fd, 1, &r, sizeof(r)));	/* no ring 1 */
	EXPECT_EQ(-EINVAL, append(s.fd, ~0u, &r, sizeof(r)));
	r.hdr.reserved = 1;
	EXPECT_EQ(-EINVAL, append(s.fd, 0, &r, sizeof(r)));	/* hdr.reserved */
	mkrec(&r, 0, 1);
	a = (struct kvm_ft_append){ .len = sizeof(r), .rec = (uintptr_t)&r };
	a.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(s.fd, KVM_FT_APPEND, &a));
	EXPECT_EQ(EINVAL, errno);

	EXPECT_EQ(-EFAULT, append(s.fd, 0, NULL, sizeof(r)));
	gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, gone);
	memcpy(gone, &r, sizeof(r));
	munmap(gone, 4096);
	EXPECT_EQ(-EFAULT, append(s.fd, 0, gone, sizeof(r)));
	EXPECT_EQ(-1, ioctl(s.fd, KVM_FT_APPEND, NULL));
	EXPECT_EQ(EFAULT, errno);

	/* Nothing of any of them reached the ring. */
	EXPECT_EQ(0, produced(&s));
	EXPECT_EQ(0, fts_prod(&s, 0)->records);
	EXPECT_EQ(0, fts_drain(&s, 0));
	/* And a good one does. */
	EXPECT_EQ(0, append(s.fd, 0, &r, sizeof(r)));
	EXPECT_EQ(1, fts_drain(&s, 0));
	EXPECT_EQ(0, s.recs[0].hdr.seq);
	fts_close(&s);
	mvm_destroy(&m);
}

TEST(interleaved)
{
	const uint16_t n = 200;
	uint8_t code[16];
	size_t i, pio = 0, vmm = 0;
	struct vrec r;
	struct fts s;
	struct mvm m;
	int ret;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, mvm_loop_code(code, 0x80, n), false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, 1 << 20));
	for (;;) {
		ret = mvm_run(&m);
		if (ret == -EINTR)
			continue;
		if (ret == KVM_EXIT_HLT)
			break;
		ASSERT_EQ(KVM_EXIT_IO, ret);
		/* The value the guest wrote, as the VMM saw it. */
		mkrec(&r, 1000 + vmm, *((uint8_t *)m.run + m.run->io.data_offset));
		ASSERT_EQ(0, append(s.fd, 0, &r, sizeof(r)));
		vmm++;
	}
	ASSERT_EQ(n, vmm);
	fts_drain(&s, 0);
	ASSERT_EQ(0, s.bad);
	ASSERT_EQ(0, s.seq_gaps);
	ASSERT_EQ(0, s.lost_in_records);
	ASSERT_EQ(fts_prod(&s, 0)->records, s.nrecs);
	vmm = 0;
	for (i = 0; i < s.nrecs; i++) {
		const struct fts_rec *x = &s.recs[i];
		const struct vrec *v = (const void *)x;

		EXPECT_EQ(i, x->hdr.seq);
		EXPECT_EQ(0, x->hdr.vcpu);
		if (x->hdr.type == KVM_FT_REC_PIO) {
			/* Each exit's VMM record comes before the next exit. */
			ASSERT_EQ(pio, vmm);
			EXPECT_EQ(pio & 0xff, x->pio.value);
			pio++;
		} else if (x->hdr.type == REC_TYPE) {
			ASSERT_EQ(pio, vmm + 1);
			EXPECT_EQ(0, x->hdr.flags);
			EXPECT_EQ(1000 + vmm, x->hdr.pos);
			EXPECT_EQ(vmm & 0xff, v->value);
			EXPECT_LE(s.recs[i - 1].hdr.ts_ns, x->hdr.ts_ns);
			vmm++;
		} else {
			EXPECT_TRUE(x->hdr.flags & KVM_FT_RECF_KERNEL);
		}
	}
	EXPECT_EQ(n, pio);
	EXPECT_EQ(n, vmm);
	fts_close(&s);
	mvm_destroy(&m);
}

TEST(full_ring)
{
	uint64_t before, n = 0, i;
	struct vrec r;
	struct fts s;
	struct mvm m;
	int ret;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, (const uint8_t[]){ 0xf4 }, 1, false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, KVM_FT_RING_MIN_DATA));
	for (;;) {
		mkrec(&r, n, n);
		before = produced(&s);
		ret = append(s.fd, 0, &r, sizeof(r));
		if (ret)
			break;
		n++;
		ASSERT_LT(n, KVM_FT_RING_MIN_DATA);
	}
	ASSERT_EQ(-EAGAIN, ret);
	EXPECT_EQ(before, produced(&s));	/* nothing written */
	EXPECT_EQ(n, fts_prod(&s, 0)->records);
	EXPECT_EQ(0, fts_prod(&s, 0)->lost);
	EXPECT_EQ(KVM_FT_RING_MIN_DATA / sizeof(r), n);
	/* Still full: refused again. */
	EXPECT_EQ(-EAGAIN, append(s.fd, 0, &r, sizeof(r)));
	/* The consumer frees space: the same record goes in, seq n. */
	EXPECT_EQ(n, fts_drain(&s, 0));
	EXPECT_EQ(0, append(s.fd, 0, &r, sizeof(r)));
	EXPECT_EQ(1, fts_drain(&s, 0));
	ASSERT_EQ(0, s.bad);
	ASSERT_EQ(0, s.seq_gaps);
	for (i = 0; i <= n; i++) {
		EXPECT_EQ(i, s.recs[i].hdr.seq);
		EXPECT_EQ(i, ((const struct vrec *)&s.recs[i])->value);
	}
	fts_close(&s);
	mvm_destroy(&m);
}

struct stress {
	int fd;
	uint64_t n;
	uint64_t again;
	int err;
};

static void *appender(void *arg)
{
	struct stress *st = arg;
	struct vrec r;
	uint64_t i;
	int ret;

	for (i = 0; i < st->n; i++) {
		mkrec(&r, i, ~i);
		while ((ret = append(st->fd, 0, &r, sizeof(r))) == -EAGAIN) {
			st->again++;
			usleep(100);
		}
		if (ret) {
			st->err = ret;
			break;
		}
	}
	return NULL;
}

TEST(thread_stress)
{
	const uint16_t n = 5000;
	struct stress st = { .n = 5000 };
	uint64_t vmm = 0, pio = 0;
	struct kvm_ft_ring_prod *p;
	uint8_t code[16];
	pthread_t t;
	struct fts s;
	struct mvm m;
	size_t i;
	long outs;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, mvm_loop_code(code, 0x80, n), false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, KVM_FT_RING_MAX_DATA));
	p = fts_prod(&s, 0);
	st.fd = s.fd;
	ASSERT_EQ(0, pthread_create(&t, NULL, appender, &st));
	outs = mvm_run_loop(&m, 0);
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(n, outs);
	ASSERT_EQ(0, st.err);
	fts_drain(&s, 0);
	TH_LOG("%zu records, %llu appends retried", s.nrecs,
	       (unsigned long long)st.again);
	ASSERT_EQ(0, s.bad);
	ASSERT_EQ(0, p->lost);
	ASSERT_EQ(0, s.seq_gaps);
	ASSERT_EQ(p->records, s.nrecs);
	for (i = 0; i < s.nrecs; i++) {
		const struct fts_rec *x = &s.recs[i];

		if (x->hdr.type == REC_TYPE) {
			const struct vrec *v = (const void *)x;

			ASSERT_EQ(0, x->hdr.flags);
			ASSERT_EQ(vmm, x->hdr.pos);
			ASSERT_EQ(~vmm, v->value);
			vmm++;
		} else {
			ASSERT_TRUE(x->hdr.flags & KVM_FT_RECF_KERNEL);
			if (x->hdr.type == KVM_FT_REC_PIO) {
				ASSERT_EQ(pio & 0xff, x->pio.value);
				pio++;
			}
		}
	}
	EXPECT_EQ(st.n, vmm);
	EXPECT_EQ(n, pio);
	fts_close(&s);
	mvm_destroy(&m);
}

TEST_HARNESS_MAIN
