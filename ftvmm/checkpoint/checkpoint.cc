// checkpoint.cc - write and apply checkpoints (checkpoint.h).
#include "checkpoint/checkpoint.h"

#include <fmt/format.h>

#include "checkpoint/codec.h"

namespace kvmft::vmm {

Status WriteCheckpoint(Machine &m, const std::vector<Stateful *> &devs,
		       LogSink *sink, uint32_t kind, uint64_t pos,
		       uint64_t number, CkptStats *st)
{
	uint64_t t0 = MonotonicNs();
	Status s;
	// More than one vCPU: the epoch thread settled each on its own
	// thread (a KVM_RUN from another thread moves the vCPU's pid: an RCU
	// grace period each time).
	if (m.vm().nr_vcpus() == 1 && !(s = m.vm().Settle()).ok())
		return s;
	CountingSink out(sink);
	kvm_ft_vmm_ckpt c{};
	InitRec(&c.hdr, KVM_FT_REC_VMM_CKPT_BEGIN, sizeof(c), pos);
	c.kind = kind;
	c.number = number;
	if (!(s = out.Append(&c, sizeof(c))).ok())
		return s;
	uint32_t pages = 0;
	if (!(s = PutState(m.vm(), devs, &out, kind, pos, &pages)).ok())
		return s;
	InitRec(&c.hdr, KVM_FT_REC_VMM_CKPT_END, sizeof(c), pos);
	c.pages = pages;
	if (!(s = out.Append(&c, sizeof(c))).ok())
		return s;
	st->count++;
	st->pages += pages;
	st->bytes += out.bytes();
	st->ns += MonotonicNs() - t0;
	return Status::Ok();
}

namespace {
// Reads a whole checkpoint, through CKPT_END, checking its framing.
Status Collect(Vm &vm, const kvm_ft_rec_hdr *begin, RecordSource *src, StateRecords *recs)
{
	for (;;) {
		const kvm_ft_rec_hdr *r;
		Status s = src->Next(&r);
		if (!s.ok())
			return s.Wrap("checkpoint");
		if (!r)
			return Status::Error(ENODATA, "checkpoint: log ends before CKPT_END");
		if (r->pos != begin->pos)
			return Status::Error(EINVAL, "checkpoint: record position changes inside it");
		bool taken = false;
		if (!(s = recs->Add(r, &taken)).ok())
			return s.Wrap("checkpoint");
		if (taken)
			continue;
		if (r->type != KVM_FT_REC_VMM_CKPT_END)
			return Status::Error(EINVAL, fmt::format(
				"checkpoint: unexpected record type {:#x}", r->type));
		const auto *e = reinterpret_cast<const kvm_ft_vmm_ckpt *>(r);
		const unsigned n = vm.nr_vcpus();
		if (r->len != sizeof(*e) || e->pages != recs->pages() || recs->cpus() != n)
			return Status::Error(EINVAL, fmt::format(
				"CKPT_END: {} pages announced, {} seen{}", e->pages, recs->pages(),
				recs->cpus() ? (recs->cpus() == n ? "" :
						", CPU state of another number of vCPUs")
					     : ", no CPU state"));
		return Status::Ok();
	}
}
} // namespace

Status ApplyCheckpoint(Machine &m, const std::vector<Stateful *> &devs,
		       const kvm_ft_rec_hdr *begin, RecordSource *src, CkptStats *st)
{
	uint64_t t0 = MonotonicNs();
	const auto *b = reinterpret_cast<const kvm_ft_vmm_ckpt *>(begin);
	if (begin->len != sizeof(*b) ||
	    (b->kind != KVM_FT_CKPT_DELTA && b->kind != KVM_FT_CKPT_FULL))
		return Status::Error(EINVAL, "CKPT_BEGIN: bad record");
	StateRecords recs(m.vm());
	Status s = Collect(m.vm(), begin, src, &recs);
	if (!s.ok())
		return s;
	for (unsigned i = 0; i < m.vm().nr_vcpus(); i++)
		if (!(s = m.vm().Settle(i)).ok())
			return s;
	if (!(s = recs.Apply(devs, b->kind == KVM_FT_CKPT_FULL)).ok())
		return s;
	st->count++;
	st->pages += recs.pages();
	st->ns += MonotonicNs() - t0;
	return Status::Ok();
}

} // namespace kvmft::vmm
