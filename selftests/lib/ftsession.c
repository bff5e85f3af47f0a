// SPDX-License-Identifier: GPL-2.0
/* ftsession.c - see ftsession.h. Barriers as in Documentation/ring.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "ftsession.h"

static int fts_map(struct fts *s)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint32_t i;

	if (ioctl(s->fd, KVM_FT_SESSION_INFO, &s->si) < 0)
		return -errno;
	s->map_len = s->si.ring_stride * s->si.nr_vcpus;
	s->map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, s->fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return -errno;
	}
	for (i = 0; i < s->si.nr_vcpus; i++)
		if (mmap(s->map + i * s->si.ring_stride, ps,
			 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, s->fd,
			 i * s->si.ring_stride) == MAP_FAILED)
			return -errno;
	s->recs = calloc(FTS_MAX_RECS, sizeof(*s->recs));
	return s->recs ? 0 : -ENOMEM;
}

static int fts_init(struct fts *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->dev = open(KVM_FT_DEVICE, O_RDWR | O_CLOEXEC);
	return s->dev < 0 ? -errno : 0;
}

int fts_attach(struct fts *s, int vm_fd, uint32_t pid, uint32_t nr_vcpus,
	       uint32_t ring_bytes)
{
	struct kvm_ft_attach a = {
		.vm_fd = vm_fd, .pid = pid, .nr_vcpus = nr_vcpus,
		.ring_bytes = ring_bytes,
	};
	int err = fts_init(s);

	if (err)
		return err;
	s->fd = ioctl(s->dev, KVM_FT_ATTACH, &a);
	if (s->fd < 0)
		return -errno;
	return fts_map(s);
}

int fts_open(struct fts *s, uint32_t id)
{
	struct kvm_ft_open o = { .id = id };
	int err = fts_init(s);

	if (err)
		return err;
	s->fd = ioctl(s->dev, KVM_FT_OPEN, &o);
	if (s->fd < 0)
		return -errno;
	return fts_map(s);
}

struct kvm_ft_ring_prod *fts_prod(struct fts *s, uint32_t vcpu)
{
	long ps = sysconf(_SC_PAGESIZE);

	return (void *)(s->map + vcpu * s->si.ring_stride + ps);
}

size_t fts_drain(struct fts *s, uint32_t vcpu)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint8_t *base = s->map + vcpu * s->si.ring_stride;
	struct kvm_ft_ring_ctl *ctl = (void *)base;
	struct kvm_ft_ring_prod *prod = (void *)(base + ps);
	uint8_t *data = base + 2 * ps;
	uint64_t size = s->si.ring_bytes, n = 0;
	uint64_t head = __atomic_load_n(&prod->producer_pos, __ATOMIC_ACQUIRE);
	uint64_t tail = ctl->consumer_pos;

	while (tail < head) {
		struct kvm_ft_rec_hdr *h = (void *)(data + (tail & (size - 1)));

		if (h->len < 8 || h->len % 8 || h->len > head - tail) {
			s->bad++;
			break;
		}
		if (h->type != KVM_FT_REC_PAD && s->nrecs < FTS_MAX_RECS) {
			struct fts_rec *r = &s->recs[s->nrecs++];

			memset(r, 0, sizeof(*r));
			memcpy(r, h, h->len < sizeof(*r) ? h->len : sizeof(*r));
			if (h->seq != s->next_seq)
				s->seq_gaps += h->seq - s->next_seq;
			if (h->type == KVM_FT_REC_LOST) {
				s->lost_in_records += r->lost.count;
				s->next_seq = h->seq + r->lost.count;
			} else {
				s->next_seq = h->seq + 1;
			}
			n++;
		}
		tail += h->len;
	}
	__atomic_store_n(&ctl->consumer_pos, tail, __ATOMIC_RELEASE);
	return n;
}

size_t fts_filter(const struct fts *s, const uint16_t *types, size_t ntypes,
		  const struct fts_rec **out, size_t max)
{
	size_t i, j, n = 0;

	for (i = 0; i < s->nrecs && n < max; i++)
		for (j = 0; j < ntypes; j++)
			if (s->recs[i].hdr.type == types[j]) {
				out[n++] = &s->recs[i];
				break;
			}
	return n;
}

void fts_close(struct fts *s)
{
	if (s->map)
		munmap(s->map, s->map_len);
	if (s->fd >= 0)
		close(s->fd);
	if (s->dev >= 0)
		close(s->dev);
	free(s->recs);
	memset(s, 0, sizeof(*s));
	s->fd = s->dev = -1;
}
