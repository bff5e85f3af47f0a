// checkpoint.cc - write and apply checkpoints (checkpoint.h).
#include "checkpoint.h"

#include <sys/mman.h>

#include <cstring>
#include <fmt/format.h>

#include "cpu_state.h"
#include "machine.h"

namespace kvmft::vmm {

namespace {
bool PageIsZero(const uint8_t *p)
{
	const auto *w = reinterpret_cast<const uint64_t *>(p);
	for (size_t i = 0; i < kPageSize / 8; i++)
		if (w[i])
			return false;
	return true;
}

Status PutPage(Machine &m, LogSink *sink, uint64_t gpa, uint64_t pos,
	       std::vector<uint8_t> *buf)
{
	auto *p = reinterpret_cast<kvm_ft_vmm_page *>(buf->data());
	InitRec(&p->hdr, KVM_FT_REC_VMM_CKPT_PAGE, buf->size(), pos);
	p->gpa = gpa;
	memcpy(buf->data() + sizeof(*p), m.vm().mem() + gpa, kPageSize);
	return sink->Append(buf->data(), buf->size());
}

// Appends one page record per page to save; returns how many.
Status PutPages(Machine &m, LogSink *sink, uint32_t kind, uint64_t pos, uint32_t *n)
{
	std::vector<uint64_t> dirty;
	if (m.vm().dirty_log()) {
		Status s = m.vm().FetchDirty(&dirty);
		if (!s.ok())
			return s;
	} else if (kind == KVM_FT_CKPT_DELTA) {
		return Status::Error(EINVAL, "delta checkpoint needs the dirty log");
	}
	std::vector<uint8_t> buf(sizeof(kvm_ft_vmm_page) + kPageSize);
	uint64_t npages = m.vm().mem_bytes() / kPageSize;
	*n = 0;
	for (uint64_t pg = 0; pg < npages; pg++) {
		if (kind == KVM_FT_CKPT_DELTA) {
			if (!(dirty[pg / 64] & (1ULL << (pg % 64))))
				continue;
		} else if (PageIsZero(m.vm().mem() + pg * kPageSize)) {
			continue;
		}
		Status s = PutPage(m, sink, pg * kPageSize, pos, &buf);
		if (!s.ok())
			return s;
		(*n)++;
	}
	return Status::Ok();
}

Status PutDevices(const std::vector<Stateful *> &devs, LogSink *sink, uint64_t pos,
		  CkptStats *st)
{
	for (Stateful *d : devs) {
		std::vector<uint8_t> state;
		d->Save(&state);
		std::vector<uint8_t> rec((sizeof(kvm_ft_vmm_dev) + state.size() + 7) & ~size_t{7});
		auto *r = reinterpret_cast<kvm_ft_vmm_dev *>(rec.data());
		InitRec(&r->hdr, KVM_FT_REC_VMM_CKPT_DEV, rec.size(), pos);
		r->id = d->state_id();
		r->bytes = static_cast<uint32_t>(state.size());
		memcpy(rec.data() + sizeof(*r), state.data(), state.size());
		Status s = sink->Append(rec.data(), rec.size());
		if (!s.ok())
			return s;
		st->bytes += rec.size();
	}
	return Status::Ok();
}
} // namespace

void InitRec(kvm_ft_rec_hdr *h, uint16_t type, uint32_t len, uint64_t pos)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->len = len;
	h->pos = pos;
	h->ts_ns = MonotonicNowNs();
}

Status WriteCheckpoint(Machine &m, const std::vector<Stateful *> &devs,
		       LogSink *sink, uint32_t kind, uint64_t pos,
		       uint64_t number, CkptStats *st)
{
	uint64_t t0 = MonotonicNowNs();
	Status s;
	// More than one vCPU: SmpVm settled each on its own thread (a
	// KVM_RUN from another thread moves the vCPU's pid: an RCU grace
	// period each time).
	if (m.vm().nr_vcpus() == 1 && !(s = m.vm().Settle()).ok())
		return s;
	kvm_ft_vmm_ckpt c{};
	InitRec(&c.hdr, KVM_FT_REC_VMM_CKPT_BEGIN, sizeof(c), pos);
	c.kind = kind;
	c.number = number;
	if (!(s = sink->Append(&c, sizeof(c))).ok())
		return s;
	uint32_t pages = 0;
	if (!(s = PutPages(m, sink, kind, pos, &pages)).ok())
		return s;
	std::vector<uint8_t> cpu;
	for (unsigned i = 0; i < m.vm().nr_vcpus(); i++) {
		if (!(s = SaveCpu(m.vm(), &cpu, i)).ok())
			return s;
		auto *ch = reinterpret_cast<kvm_ft_rec_hdr *>(cpu.data());
		InitRec(ch, KVM_FT_REC_VMM_CKPT_CPU, cpu.size(), pos);
		if (!(s = sink->Append(cpu.data(), cpu.size())).ok())
			return s;
		st->bytes += cpu.size();
	}
	if (!(s = PutDevices(devs, sink, pos, st)).ok())
		return s;
	InitRec(&c.hdr, KVM_FT_REC_VMM_CKPT_END, sizeof(c), pos);
	c.pages = pages;
	if (!(s = sink->Append(&c, sizeof(c))).ok())
		return s;
	st->count++;
	st->pages += pages;
	st->bytes += 2 * sizeof(c) +
		     pages * (sizeof(kvm_ft_vmm_page) + kPageSize);
	st->ns += MonotonicNowNs() - t0;
	return Status::Ok();
}

namespace {
Status CheckPage(Machine &m, const kvm_ft_rec_hdr *r)
{
	const auto *p = reinterpret_cast<const kvm_ft_vmm_page *>(r);
	if (r->len != sizeof(*p) + kPageSize || p->gpa % kPageSize ||
	    p->gpa >= m.vm().mem_bytes())
		return Status::Error(EINVAL, fmt::format("CKPT_PAGE: bad page {:#x}", p->gpa));
	return Status::Ok();
}

void ApplyPage(Machine &m, const kvm_ft_rec_hdr *r)
{
	const auto *p = reinterpret_cast<const kvm_ft_vmm_page *>(r);
	memcpy(m.vm().mem() + p->gpa, reinterpret_cast<const uint8_t *>(p) + sizeof(*p),
	       kPageSize);
}

Status ApplyDev(const std::vector<Stateful *> &devs, const kvm_ft_rec_hdr *r)
{
	const auto *d = reinterpret_cast<const kvm_ft_vmm_dev *>(r);
	if (r->len < sizeof(*d) || d->bytes > r->len - sizeof(*d))
		return Status::Error(EINVAL, "CKPT_DEV: bad length");
	for (Stateful *s : devs)
		if (s->state_id() == d->id)
			return s->Load(reinterpret_cast<const uint8_t *>(d) + sizeof(*d),
				       d->bytes);
	return Status::Error(EINVAL, fmt::format("CKPT_DEV: unknown device {}", d->id));
}

// Reads a whole checkpoint, through CKPT_END, checking its framing.
Status Collect(Machine &m, const kvm_ft_rec_hdr *begin, RecordSource *src,
	       std::vector<const kvm_ft_rec_hdr *> *recs)
{
	uint32_t pages = 0, cpus = 0;
	for (;;) {
		const kvm_ft_rec_hdr *r;
		Status s = src->Next(&r);
		if (!s.ok())
			return s.Wrap("checkpoint");
		if (!r)
			return Status::Error(ENODATA, "checkpoint: log ends before CKPT_END");
		if (r->pos != begin->pos)
			return Status::Error(EINVAL, "checkpoint: record position changes inside it");
		switch (r->type) {
		case KVM_FT_REC_VMM_CKPT_PAGE:
			if (!(s = CheckPage(m, r)).ok())
				return s;
			pages++;
			break;
		case KVM_FT_REC_VMM_CKPT_CPU:
			if (++cpus > m.vm().nr_vcpus())
				return Status::Error(EINVAL, fmt::format(
					"checkpoint: more CKPT_CPU than the VM's {} vCPUs",
					m.vm().nr_vcpus()));
			break;
		case KVM_FT_REC_VMM_CKPT_DEV:
			break;
		case KVM_FT_REC_VMM_CKPT_END: {
			const auto *e = reinterpret_cast<const kvm_ft_vmm_ckpt *>(r);
			if (r->len != sizeof(*e) || e->pages != pages || cpus != m.vm().nr_vcpus())
				return Status::Error(EINVAL, fmt::format(
					"CKPT_END: {} pages announced, {} seen{}", e->pages,
					pages, cpus ? (cpus == m.vm().nr_vcpus() ? "" :
						       ", CPU state of another number of vCPUs")
						    : ", no CPU state"));
			return Status::Ok();
		}
		default:
			return Status::Error(EINVAL, fmt::format(
				"checkpoint: unexpected record type {:#x}", r->type));
		}
		recs->push_back(r);
	}
}
} // namespace

Status ApplyCheckpoint(Machine &m, const std::vector<Stateful *> &devs,
		       const kvm_ft_rec_hdr *begin, RecordSource *src, CkptStats *st)
{
	uint64_t t0 = MonotonicNowNs();
	const auto *b = reinterpret_cast<const kvm_ft_vmm_ckpt *>(begin);
	if (begin->len != sizeof(*b) ||
	    (b->kind != KVM_FT_CKPT_DELTA && b->kind != KVM_FT_CKPT_FULL))
		return Status::Error(EINVAL, "CKPT_BEGIN: bad record");
	std::vector<const kvm_ft_rec_hdr *> recs;
	Status s = Collect(m, begin, src, &recs);
	if (!s.ok())
		return s;
	for (unsigned i = 0; i < m.vm().nr_vcpus(); i++)
		if (!(s = m.vm().Settle(i)).ok())
			return s;
	if (b->kind == KVM_FT_CKPT_FULL &&
	    madvise(m.vm().mem(), m.vm().mem_bytes(), MADV_DONTNEED) < 0)
		return Status::Errno("zero guest RAM for a full checkpoint");
	unsigned cpu = 0;
	for (const kvm_ft_rec_hdr *r : recs) {
		if (r->type == KVM_FT_REC_VMM_CKPT_PAGE) {
			ApplyPage(m, r);
			st->pages++;
		} else if (r->type == KVM_FT_REC_VMM_CKPT_CPU) {
			s = LoadCpu(m.vm(), r, cpu++); // the n-th is vCPU n's
		} else {
			s = ApplyDev(devs, r);
		}
		if (!s.ok())
			return s;
	}
	st->count++;
	st->ns += MonotonicNowNs() - t0;
	return Status::Ok();
}

} // namespace kvmft::vmm
