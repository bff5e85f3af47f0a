// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_ft_test - capture selftests for kvm_ft.ko against real KVM.
 *
 * Each test runs a micro-guest (microvm.h) with capture attached and
 * asserts the exact sequence of records and values the module wrote.
 * Needs /dev/kvm and /dev/kvm_ft; SKIPs with the reason otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kselftest_harness.h"
#include "ftsession.h"
#include "microvm.h"
#include "ft_test.h"

#define SVM_EXIT_IOIO	0x7b
#define SVM_EXIT_NPF	0x400

static const uint16_t io_types[] = {
	KVM_FT_REC_PIO, KVM_FT_REC_MMIO, KVM_FT_REC_MSR, KVM_FT_REC_INJ_VIRQ,
};

/*
 * Drop repeated injections: when delivering an interrupt is cut short by an
 * exit (a nested page fault on the IVT or stack, a host interrupt), KVM
 * injects it again and marks it reinjected. An interrupt queued by
 * KVM_INTERRUPT is marked so from its first injection, so the first of a
 * run of one vector is kept whatever its flag. A repeat must be marked.
 * Returns how many were dropped, or -1 if a repeat is not marked.
 */
static int drop_reinjections(const struct fts_rec **io, size_t *n)
{
	size_t i, out = 0;
	int dropped = 0;
	bool in_run = false;
	uint32_t last = 0;

	for (i = 0; i < *n; i++) {
		if (io[i]->hdr.type == KVM_FT_REC_INJ_VIRQ) {
			if (in_run && io[i]->inj.vector == last) {
				if (!io[i]->inj.reinjected)
					return -1;
				dropped++;
				continue;
			}
			in_run = true;
			last = io[i]->inj.vector;
		} else {
			in_run = false;
		}
		io[out++] = io[i];
	}
	*n = out;
	return dropped;
}

static uint64_t features(void)
{
	struct kvm_ft_info info = { 0 };
	int fd = open(KVM_FT_DEVICE, O_RDWR);

	if (fd < 0 || ioctl(fd, KVM_FT_GET_INFO, &info) < 0)
		info.features = 0;
	if (fd >= 0)
		close(fd);
	return info.features;
}

/* Run the guest to HLT, answering port and MMIO reads with @in_val/@mmio_val. */
static int run_to_hlt(struct mvm *m, uint8_t in_val, uint64_t mmio_val)
{
	struct kvm_run *run;
	int r, guard = 0;

	while (guard++ < 1000) {
		r = mvm_run(m);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		run = m->run;
		if (r == KVM_EXIT_HLT)
			return 0;
		if (r == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_IN)
			*((uint8_t *)run + run->io.data_offset) = in_val;
		else if (r == KVM_EXIT_MMIO && !run->mmio.is_write)
			memcpy(run->mmio.data, &mmio_val, run->mmio.len);
		else if (r != KVM_EXIT_IO && r != KVM_EXIT_MMIO)
			return -EPROTO;
	}
	return -ELOOP;
}

#define CHECK_PIO(r, _port, _dir, _val) do {				\
	ASSERT_EQ(KVM_FT_REC_PIO, (r)->hdr.type);			\
	EXPECT_EQ(_port, (r)->pio.port);				\
	EXPECT_EQ(_dir, (r)->pio.dir);					\
	EXPECT_EQ(1, (r)->pio.size);					\
	EXPECT_EQ(1, (r)->pio.count);					\
	EXPECT_EQ(_val, (r)->pio.value);				\
} while (0)

/* Log the records a test got, for when it fails. */
static void dump(struct __test_metadata *_metadata, const struct fts *s)
{
	size_t i;

	for (i = 0; i < s->nrecs; i++) {
		const struct fts_rec *r = &s->recs[i];

		TH_LOG("rec %zu type %u seq %llu pio %x/%u/%llx exit %x inj %u/%u/%u",
		       i, r->hdr.type, (unsigned long long)r->hdr.seq,
		       r->pio.port, r->pio.dir, (unsigned long long)r->pio.value,
		       r->exit.reason, r->inj.vector, r->inj.soft, r->inj.reinjected);
	}
}

/* Every record is well-formed, numbered from 0 without gaps, vCPU 0. */
static void check_stream(struct __test_metadata *_metadata, struct fts *s)
{
	size_t i;

	ASSERT_EQ(0, s->bad);
	ASSERT_EQ(0, s->seq_gaps);
	for (i = 0; i < s->nrecs; i++) {
		EXPECT_EQ(0, s->recs[i].hdr.vcpu);
		EXPECT_TRUE(s->recs[i].hdr.flags & KVM_FT_RECF_KERNEL);
		if (i) {
			EXPECT_LE(s->recs[i - 1].hdr.pos, s->recs[i].hdr.pos);
		}
	}
}

TEST(info)
{
	uint64_t f;

	NEED_KVM_FT(_metadata);
	f = features();
	ASSERT_TRUE(f & KVM_FT_FEAT_RING);
	ASSERT_TRUE(f & KVM_FT_FEAT_PIO);
	ASSERT_TRUE(f & KVM_FT_FEAT_MMIO);
	ASSERT_TRUE(f & KVM_FT_FEAT_MSR);
	ASSERT_TRUE(f & KVM_FT_FEAT_INJ_VIRQ);
	ASSERT_TRUE(f & KVM_FT_FEAT_EXIT);
}

/* out, in, MMIO write, MMIO read, wrmsr, rdmsr, hlt: exact records. */
TEST(pio_mmio_msr_sequence)
{
	static const uint8_t code[] = {
		0xba, 0xf8, 0x03,		/* mov dx, 0x3f8 */
		0xb0, 0x41,			/* mov al, 0x41 */
		0xee,				/* out dx, al */
		0xec,				/* in al, dx */
		0xa2, 0x00, 0x90,		/* mov [0x9000], al */
		0xa0, 0x00, 0x90,		/* mov al, [0x9000] */
		0x66, 0xb9, 0x80, 0x00, 0x00, 0xc0, /* mov ecx, EFER */
		0x66, 0x31, 0xc0,		/* xor eax, eax */
		0x66, 0x31, 0xd2,		/* xor edx, edx */
		0x0f, 0x30,			/* wrmsr */
		0x0f, 0x32,			/* rdmsr */
		0xf4,				/* hlt */
	};
	const struct fts_rec *io[16];
	struct fts s;
	struct mvm m;
	size_t n, i;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, sizeof(code), false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, 0));
	ASSERT_EQ(0, run_to_hlt(&m, 0x5a, 0x77));
	fts_drain(&s, 0);
	check_stream(_metadata, &s);
	n = fts_filter(&s, io_types, 4, io, 16);
	ASSERT_EQ(6, n);
	CHECK_PIO(io[0], 0x3f8, KVM_FT_DIR_OUT, 0x41);
	CHECK_PIO(io[1], 0x3f8, KVM_FT_DIR_IN, 0x5a);
	ASSERT_EQ(KVM_FT_REC_MMIO, io[2]->hdr.type);
	EXPECT_EQ(MVM_MMIO, io[2]->mmio.gpa);
	EXPECT_EQ(KVM_FT_DIR_OUT, io[2]->mmio.dir);
	EXPECT_EQ(1, io[2]->mmio.len);
	EXPECT_EQ(0x5a, io[2]->mmio.value);
	ASSERT_EQ(KVM_FT_REC_MMIO, io[3]->hdr.type);
	EXPECT_EQ(KVM_FT_DIR_IN, io[3]->mmio.dir);
	EXPECT_EQ(0x77, io[3]->mmio.value);
	ASSERT_EQ(KVM_FT_REC_MSR, io[4]->hdr.type);
	EXPECT_EQ(0xc0000080, io[4]->msr.index);
	EXPECT_EQ(KVM_FT_DIR_OUT, io[4]->msr.dir);
	EXPECT_EQ(0, io[4]->msr.exception);
	ASSERT_EQ(KVM_FT_REC_MSR, io[5]->hdr.type);
	EXPECT_EQ(KVM_FT_DIR_IN, io[5]->msr.dir);
	EXPECT_EQ(0, io[5]->msr.value & ~0x1000ull);	/* EFER, SVME aside */

	/* Each PIO follows an IOIO exit; exits and entries alternate. */
	for (i = 1; i < s.nrecs; i++) {
		const struct fts_rec *r = &s.recs[i], *p = &s.recs[i - 1];

		if (r->hdr.type == KVM_FT_REC_PIO && r->pio.dir == KVM_FT_DIR_OUT) {
			ASSERT_EQ(KVM_FT_REC_EXIT, p->hdr.type);
			if (p->exit.isa == KVM_FT_ISA_SVM &&
			    p->exit.reason != KVM_FT_EXIT_REASON_UNKNOWN)
				EXPECT_EQ(SVM_EXIT_IOIO, p->exit.reason);
			EXPECT_EQ(MVM_CODE + 5, p->exit.rip);
		}
	}
	n = 0;
	for (i = 0; i < s.nrecs; i++) {
		uint16_t t = s.recs[i].hdr.type;

		if (t == KVM_FT_REC_EXIT || t == KVM_FT_REC_ENTRY) {
			EXPECT_EQ(n % 2 ? KVM_FT_REC_EXIT : KVM_FT_REC_ENTRY, t);
			n++;
		}
	}
	EXPECT_GE(n, 12);
	fts_close(&s);
	mvm_destroy(&m);
}

/* KVM_INTERRUPT (no in-kernel irqchip): injection logged at its place. */
TEST(inject_kvm_interrupt)
{
	static const uint8_t code[] = {
		0xfb,			/* sti */
		0xf4,			/* hlt */
		0xe6, 0x81,		/* out 0x81, al */
		0xf4,			/* hlt */
	};
	static const uint8_t handler[] = {
		0xb0, 0x30,		/* mov al, 0x30 */
		0xe6, 0x80,		/* out 0x80, al */
		0xcf,			/* iret */
	};
	struct kvm_interrupt irq = { .irq = 0x30 };
	const struct fts_rec *io[16];
	struct fts s;
	struct mvm m;
	size_t n;
	int r;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, sizeof(code), false));
	mvm_set_handler(&m, 0x30, handler, sizeof(handler));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, 0));
	ASSERT_EQ(KVM_EXIT_HLT, mvm_run(&m));
	m.run->request_interrupt_window = 1;
	while (!m.run->ready_for_interrupt_injection) {
		r = mvm_run(&m);
		ASSERT_TRUE(r == KVM_EXIT_IRQ_WINDOW_OPEN || r == -EINTR);
	}
	m.run->request_interrupt_window = 0;
	ASSERT_EQ(0, ioctl(m.vcpu, KVM_INTERRUPT, &irq));
	ASSERT_EQ(0, run_to_hlt(&m, 0, 0));
	fts_drain(&s, 0);
	check_stream(_metadata, &s);
	n = fts_filter(&s, io_types, 4, io, 16);
	ASSERT_LE(0, drop_reinjections(io, &n));
	ASSERT_EQ(3, n)
		dump(_metadata, &s);
	ASSERT_EQ(KVM_FT_REC_INJ_VIRQ, io[0]->hdr.type);
	EXPECT_EQ(0x30, io[0]->inj.vector);
	EXPECT_EQ(0, io[0]->inj.soft);
	CHECK_PIO(io[1], 0x80, KVM_FT_DIR_OUT, 0x30);
	CHECK_PIO(io[2], 0x81, KVM_FT_DIR_OUT, 0x30);
	fts_close(&s);
	mvm_destroy(&m);
}

/* In-kernel PIC, KVM_IRQ_LINE: guest programs the PIC, takes IRQ0. */
TEST(inject_irq_line)
{
	static const uint8_t code[] = {
		0xb0, 0x11, 0xe6, 0x20,	/* ICW1 */
		0xb0, 0x20, 0xe6, 0x21,	/* ICW2: vector base 0x20 */
		0xb0, 0x04, 0xe6, 0x21,	/* ICW3 */
		0xb0, 0x01, 0xe6, 0x21,	/* ICW4 */
		0xb0, 0xfe, 0xe6, 0x21,	/* OCW1: only IRQ0 */
		0xe6, 0x80,		/* out 0x80: ready, raise IRQ0 */
		0xfb,			/* sti */
		0xf4,			/* hlt (in kernel, woken by IRQ0) */
		0xe6, 0x82,		/* out 0x82: done */
		0xeb, 0xfe,		/* jmp $ */
	};
	static const uint8_t handler[] = {
		0xb0, 0x44, 0xe6, 0x84,	/* out 0x84, 0x44 */
		0xb0, 0x20, 0xe6, 0x20,	/* EOI */
		0xcf,			/* iret */
	};
	struct kvm_irq_level lvl = { .irq = 0 };
	const struct fts_rec *io[32];
	struct fts s;
	struct mvm m;
	int r, done = 0, guard = 0;
	size_t n;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, sizeof(code), true));
	mvm_set_handler(&m, 0x20, handler, sizeof(handler));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, 0));
	while (!done && guard++ < 100) {
		r = mvm_run(&m);
		if (r == -EINTR)
			continue;
		ASSERT_EQ(KVM_EXIT_IO, r);
		if (m.run->io.port == 0x80) {
			lvl.level = 1;
			ASSERT_EQ(0, ioctl(m.vm, KVM_IRQ_LINE, &lvl));
			lvl.level = 0;
			ASSERT_EQ(0, ioctl(m.vm, KVM_IRQ_LINE, &lvl));
		}
		done = m.run->io.port == 0x82;
	}
	ASSERT_TRUE(done);
	fts_drain(&s, 0);
	check_stream(_metadata, &s);
	n = fts_filter(&s, io_types, 4, io, 32);
	ASSERT_LE(0, drop_reinjections(io, &n));
	ASSERT_EQ(10, n)
		dump(_metadata, &s);
	CHECK_PIO(io[0], 0x20, KVM_FT_DIR_OUT, 0x11);
	CHECK_PIO(io[1], 0x21, KVM_FT_DIR_OUT, 0x20);
	CHECK_PIO(io[4], 0x21, KVM_FT_DIR_OUT, 0xfe);
	CHECK_PIO(io[5], 0x80, KVM_FT_DIR_OUT, 0xfe);
	ASSERT_EQ(KVM_FT_REC_INJ_VIRQ, io[6]->hdr.type);
	EXPECT_EQ(0x20, io[6]->inj.vector);
	CHECK_PIO(io[7], 0x84, KVM_FT_DIR_OUT, 0x44);
	CHECK_PIO(io[8], 0x20, KVM_FT_DIR_OUT, 0x20);
	CHECK_PIO(io[9], 0x82, KVM_FT_DIR_OUT, 0x20);
	fts_close(&s);
	mvm_destroy(&m);
}

/*
 * A 4 KiB ring drained only once, mid-run: records are dropped, never
 * waited for; the LOST record and the counters account for every one.
 */
TEST(overflow_counts_exactly)
{
	const uint16_t n = 1500;
	const uint8_t code[] = {
		0xb9, n & 0xff, n >> 8,	/* mov cx, n */
		0xe6, 0x80,		/* 1: out 0x80, al */
		0xfe, 0xc0,		/* inc al */
		0xe2, 0xfa,		/* loop 1b */
		0xe6, 0x81,		/* out 0x81: the test drains here */
		0xb9, n & 0xff, n >> 8,	/* mov cx, n */
		0xe6, 0x80,		/* 2: out 0x80, al */
		0xfe, 0xc0,		/* inc al */
		0xe2, 0xfa,		/* loop 2b */
		0xf4,			/* hlt */
	};
	struct kvm_ft_ring_prod *p;
	uint64_t lost_first = 0, written = 0, lost_recs = 0;
	long outs = 0;
	struct fts s;
	struct mvm m;
	size_t i;
	int r;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, sizeof(code), false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, KVM_FT_RING_MIN_DATA));
	p = fts_prod(&s, 0);
	for (;;) {
		r = mvm_run(&m);
		if (r == -EINTR)
			continue;
		if (r == KVM_EXIT_HLT)
			break;
		ASSERT_EQ(KVM_EXIT_IO, r);
		outs++;
		if (m.run->io.port == 0x81) {
			lost_first = p->lost;
			ASSERT_GT(lost_first, 0);
			fts_drain(&s, 0);
		}
	}
	ASSERT_EQ(2 * n + 1, outs);		/* the vCPU was never held */
	fts_drain(&s, 0);
	ASSERT_EQ(0, s.bad);
	ASSERT_EQ(p->records, s.nrecs);		/* every published record read */
	ASSERT_EQ(0, s.seq_gaps);		/* every gap covered by a LOST */
	for (i = 0; i < s.nrecs; i++) {
		if (s.recs[i].hdr.type == KVM_FT_REC_LOST)
			lost_recs++;
		else
			written++;
	}
	ASSERT_GE(lost_recs, 1);
	/* Drops before the drain were all reported after it. */
	ASSERT_GE(s.lost_in_records, lost_first);
	ASSERT_GT(p->lost, lost_first);		/* overflowed again at the end */
	/* Sequence numbers seen + still-unreported drops = all produced. */
	EXPECT_EQ(s.next_seq + (p->lost - s.lost_in_records), written + p->lost);
	fts_close(&s);
	mvm_destroy(&m);
}

static size_t count_port(const struct fts *s, uint16_t port)
{
	size_t i, n = 0;

	for (i = 0; i < s->nrecs; i++)
		n += s->recs[i].hdr.type == KVM_FT_REC_PIO &&
		     s->recs[i].pio.port == port;
	return n;
}

/* Two VMs in one process, one attached: the other never shows up. */
TEST(two_vms_isolated)
{
	uint8_t ca[16], cb[16];
	struct mvm a, b;
	struct fts s, t;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&a, ca, mvm_loop_code(ca, 0x80, 50), false));
	ASSERT_EQ(0, mvm_create(&b, cb, mvm_loop_code(cb, 0x90, 70), false));
	ASSERT_EQ(0, fts_attach(&s, a.vm, 0, 1, 0));
	ASSERT_EQ(70, mvm_run_loop(&b, 0));
	ASSERT_EQ(50, mvm_run_loop(&a, 0));
	fts_drain(&s, 0);
	check_stream(_metadata, &s);
	EXPECT_EQ(50, count_port(&s, 0x80));
	EXPECT_EQ(0, count_port(&s, 0x90));
	/* The same VM cannot be attached twice. */
	EXPECT_EQ(-EBUSY, fts_attach(&t, a.vm, 0, 1, 0));
	fts_close(&t);
	fts_close(&s);
	mvm_destroy(&a);
	mvm_destroy(&b);
}

/* One KVM_RUN, answering a port read with @in_val. */
static int step(struct mvm *m, uint8_t in_val)
{
	int r;

	do
		r = mvm_run(m);
	while (r == -EINTR);
	if (r == KVM_EXIT_IO && m->run->io.direction == KVM_EXIT_IO_IN)
		*((uint8_t *)m->run + m->run->io.data_offset) = in_val;
	return r;
}

/*
 * Two VMs driven by one thread, exits interleaved, one attached: port
 * reads completed at the next KVM_RUN land in the right VM's ring, and
 * the other VM's events never appear.
 */
TEST(two_vms_interleaved_one_thread)
{
	static const uint8_t ca[] = {
		0xe6, 0x80, 0xe4, 0x81, 0xe6, 0x82, 0xf4,  /* out, in, out, hlt */
	};
	static const uint8_t cb[] = {
		0xe6, 0x90, 0xe4, 0x91, 0xe6, 0x92, 0xf4,
	};
	const struct fts_rec *io[16];
	struct mvm a, b;
	struct fts s;
	size_t n, i;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&a, ca, sizeof(ca), false));
	ASSERT_EQ(0, mvm_create(&b, cb, sizeof(cb), false));
	ASSERT_EQ(0, fts_attach(&s, a.vm, 0, 1, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(KVM_EXIT_IO, step(&a, 0xa1));
		ASSERT_EQ(KVM_EXIT_IO, step(&b, 0xb1));
	}
	ASSERT_EQ(KVM_EXIT_HLT, step(&a, 0));
	ASSERT_EQ(KVM_EXIT_HLT, step(&b, 0));
	fts_drain(&s, 0);
	check_stream(_metadata, &s);
	n = fts_filter(&s, io_types, 4, io, 16);
	ASSERT_EQ(3, n)
		dump(_metadata, &s);
	CHECK_PIO(io[0], 0x80, KVM_FT_DIR_OUT, 0);
	CHECK_PIO(io[1], 0x81, KVM_FT_DIR_IN, 0xa1);
	CHECK_PIO(io[2], 0x82, KVM_FT_DIR_OUT, 0xa1);
	fts_close(&s);
	mvm_destroy(&a);
	mvm_destroy(&b);
}

/* Attach, detach, reattach: a fresh stream each time, nothing between. */
TEST(attach_detach_reattach)
{
	static const uint8_t code[] = {
		0xe6, 0x80, 0xe6, 0x81, 0xe6, 0x82, 0xf4,
	};
	struct fts s;
	struct mvm m;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, sizeof(code), false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, 0));
	ASSERT_EQ(KVM_EXIT_IO, mvm_run(&m));		/* out 0x80 */
	fts_drain(&s, 0);
	EXPECT_EQ(1, count_port(&s, 0x80));
	fts_close(&s);
	ASSERT_EQ(KVM_EXIT_IO, mvm_run(&m));		/* out 0x81: detached */
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, 0));
	ASSERT_EQ(KVM_EXIT_IO, mvm_run(&m));		/* out 0x82 */
	fts_drain(&s, 0);
	ASSERT_GT(s.nrecs, 0);
	EXPECT_EQ(0, s.recs[0].hdr.seq);
	EXPECT_EQ(0, count_port(&s, 0x81));
	EXPECT_EQ(1, count_port(&s, 0x82));
	fts_close(&s);
	mvm_destroy(&m);
}

/* Attach by pid to a VM another process owns (the diagnostic path). */
TEST(attach_by_pid)
{
	int go[2];
	pid_t child;
	struct fts s;
	int status;
	char c = 0;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, pipe(go));
	child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		uint8_t code[16];
		struct mvm m;

		if (mvm_create(&m, code, mvm_loop_code(code, 0x85, 40), false) ||
		    read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(mvm_run_loop(&m, 0) == 40 ? 0 : 3);
	}
	ASSERT_EQ(0, fts_attach(&s, -1, child, 1, 0));
	EXPECT_EQ(0, s.si.bound);
	ASSERT_EQ(1, write(go[1], &c, 1));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	fts_drain(&s, 0);
	check_stream(_metadata, &s);
	EXPECT_EQ(40, count_port(&s, 0x85));
	ASSERT_EQ(0, ioctl(s.fd, KVM_FT_SESSION_INFO, &s.si));
	EXPECT_EQ(1, s.si.bound);
	fts_close(&s);
}

/* rmmod while a session holds the module: refused, nothing freed. */
TEST(rmmod_refused_while_session_open)
{
	uint8_t code[16];
	struct fts s;
	struct mvm m;

	NEED_KVM_FT(_metadata);
	ASSERT_EQ(0, mvm_create(&m, code, mvm_loop_code(code, 0x80, 5), false));
	ASSERT_EQ(0, fts_attach(&s, m.vm, 0, 1, 0));
	ASSERT_EQ(-1, syscall(__NR_delete_module, "kvm_ft", O_NONBLOCK));
	ASSERT_EQ(EWOULDBLOCK, errno);
	ASSERT_EQ(5, mvm_run_loop(&m, 0));
	fts_drain(&s, 0);
	EXPECT_EQ(5, count_port(&s, 0x80));
	fts_close(&s);
	mvm_destroy(&m);
}

TEST_HARNESS_MAIN
