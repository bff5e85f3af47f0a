// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_ft_bench - costs of kvm_ft.ko capture, measured in one boot, each
 * figure a ratio against a baseline taken in the same run, alternating
 * runs so drift hits both sides.
 *
 *  1. capture overhead: a micro-guest doing N port exits (to userspace,
 *     and handled in the kernel by the in-kernel PIC), exits/s with the VM
 *     attached vs. not attached; median of R rounds. Attached three ways:
 *     no consumer during the run (the probes' own cost), a consumer that
 *     sleeps in poll() and is woken (KVM_FT_CTL_WAKEUP), and a consumer
 *     that polls the ring every millisecond without asking for wakeups.
 *  2. ring throughput: the guest produces flat out while a consumer
 *     thread drains through poll(); records/s drained, records lost, vs.
 *     the producer's rate in the same run.
 *
 * usage: kvm_ft_bench [N] [R]
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "ftsession.h"
#include "microvm.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Guest: program the in-kernel PIC, then N times "out 0x21, al" (handled
 * in the kernel) or "out 0x80, al" (handled in userspace), then
 * "out 0x99" (hlt would halt in the kernel: the PIC is in-kernel).
 */
static size_t guest(uint8_t *buf, uint16_t n, int kernel_port)
{
	static const uint8_t pic[] = {
		0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x20, 0xe6, 0x21,
		0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21,
		0xb0, 0xff,		/* mov al, 0xff: all masked */
	};
	const uint8_t loop[] = {
		0xb9, n & 0xff, n >> 8,			/* mov cx, n */
		0xe6, kernel_port ? 0x21 : 0x80,	/* 1: out port, al */
		0xe2, 0xfc,				/* loop 1b */
		0xe6, 0x99,				/* out 0x99: done */
	};

	memcpy(buf, pic, sizeof(pic));
	memcpy(buf + sizeof(pic), loop, sizeof(loop));
	return sizeof(pic) + sizeof(loop);
}

enum mode { NONE, QUIET, WAKE, POLL1MS, NMODES };
static const char *const mode_name[] = {
	"not attached", "attached, drained after the run",
	"attached, consumer woken by poll()", "attached, consumer polling every 1 ms",
};

struct drainer {
	struct fts *s;
	volatile int stop;
	int wake;
	uint64_t drained;
};

static void *drain_thread(void *p)
{
	struct drainer *d = p;
	struct pollfd pfd = { .fd = d->s->fd, .events = POLLIN };
	struct kvm_ft_ring_ctl *ctl = (void *)d->s->map;

	for (;;) {
		size_t n;

		d->s->nrecs = 0;	/* keep counting, not storing */
		n = fts_drain(d->s, 0);
		d->drained += n;
		if (n)
			continue;
		if (d->stop)
			break;
		if (!d->wake) {
			usleep(1000);
			continue;
		}
		__atomic_or_fetch(&ctl->flags, KVM_FT_CTL_WAKEUP, __ATOMIC_SEQ_CST);
		d->s->nrecs = 0;
		n = fts_drain(d->s, 0);
		d->drained += n;
		if (!n)
			poll(&pfd, 1, 10);
		__atomic_and_fetch(&ctl->flags, ~KVM_FT_CTL_WAKEUP, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

/* One run: exits/s; records drained and lost when attached. */
static double run(uint16_t n, int kernel_port, enum mode mode, uint64_t *recs,
		  uint64_t *lost, double *secs)
{
	int attach = mode != NONE;
	uint8_t code[64];
	struct drainer d = { 0 };
	pthread_t th;
	struct fts s;
	struct mvm m;
	double t0, t1;
	long exits = 0;
	int r;

	if (mvm_create(&m, code, guest(code, n, kernel_port), true))
		return -1;
	if (attach) {
		if (fts_attach(&s, m.vm, 0, 1, 1 << 20))
			return -1;
		d.s = &s;
		d.wake = mode == WAKE;
		if (mode != QUIET)
			pthread_create(&th, NULL, drain_thread, &d);
	}
	t0 = now();
	for (;;) {
		r = mvm_run(&m);
		if (r == -EINTR)
			continue;
		if (r < 0 || r != KVM_EXIT_IO || m.run->io.port == 0x99)
			break;
		exits++;
	}
	t1 = now();
	if (attach) {
		d.stop = 1;
		if (mode != QUIET)
			pthread_join(th, NULL);
		else
			d.drained = fts_drain(&s, 0);
		*recs = d.drained;
		*lost = fts_prod(&s, 0)->lost;
		fts_close(&s);
	}
	mvm_destroy(&m);
	*secs = t1 - t0;
	return (kernel_port ? n : exits) / (t1 - t0);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	double rate[NMODES][64], ratio[NMODES][64], secs;
	uint64_t recs = 0, lost = 0, tot_recs, tot_lost;
	double tot_secs;
	int kp, i, mo;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (reps > 64 || reps < 1 || n < 1 || n > 65535)
		return 2;
	for (kp = 0; kp <= 1; kp++) {
		const char *what = kp ? "in-kernel port exits (PIC)" : "userspace port exits";

		run(n / 4, kp, NONE, &recs, &lost, &secs);	/* warm up */
		tot_recs = tot_lost = 0;
		tot_secs = 0;
		for (i = 0; i < reps; i++)
			for (mo = 0; mo < NMODES; mo++) {
				rate[mo][i] = run(n, kp, mo, &recs, &lost, &secs);
				ratio[mo][i] = rate[mo][i] / rate[NONE][i];
				if (mo == WAKE) {
					tot_recs += recs;
					tot_lost += lost;
					tot_secs += secs;
				}
			}
		printf("bench: capture overhead, %s: %d exits, %d rounds (medians)\n",
		       what, n, reps);
		for (mo = 0; mo < NMODES; mo++) {
			qsort(rate[mo], reps, sizeof(double), cmp);
			qsort(ratio[mo], reps, sizeof(double), cmp);
			printf("bench:   %-40s %8.0f exits/s  ratio %.3f (min %.3f, max %.3f)\n",
			       mode_name[mo], rate[mo][reps / 2], ratio[mo][reps / 2],
			       ratio[mo][0], ratio[mo][reps - 1]);
		}
		printf("bench: ring throughput, %s, woken consumer: %.0f records/s drained, "
		       "%llu lost; producer %.0f records/s; drained/produced %.4f\n",
		       what, tot_recs / tot_secs, (unsigned long long)tot_lost,
		       (tot_recs + tot_lost) / tot_secs,
		       (double)tot_recs / (double)(tot_recs + tot_lost));
	}
	return 0;
}
