// codec.cc - pages, CPU and device state as log records (codec.h).
#include "checkpoint/codec.h"

#include <sys/mman.h>

#include <cstring>
#include <fmt/format.h>

#include "ftlog/record.h"
#include "vm/cpu_state.h"

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

Status PutPages(Vm &vm, LogSink *sink, uint32_t kind, uint64_t pos, uint32_t *n)
{
	std::vector<uint64_t> dirty;
	if (vm.dirty_log()) {
		Status s = vm.FetchDirty(&dirty);
		if (!s.ok())
			return s;
	} else if (kind == KVM_FT_CKPT_DELTA) {
		return Status::Error(EINVAL, "delta checkpoint needs the dirty log");
	}
	std::vector<uint8_t> buf(sizeof(kvm_ft_vmm_page) + kPageSize);
	auto *p = reinterpret_cast<kvm_ft_vmm_page *>(buf.data());
	*n = 0;
	for (uint64_t pg = 0; pg < vm.mem_bytes() / kPageSize; pg++) {
		const uint8_t *src = vm.mem() + pg * kPageSize;
		if (kind == KVM_FT_CKPT_DELTA ? !(dirty[pg / 64] & (1ULL << (pg % 64)))
					      : PageIsZero(src))
			continue;
		InitRec(&p->hdr, KVM_FT_REC_VMM_CKPT_PAGE, buf.size(), pos);
		p->gpa = pg * kPageSize;
		memcpy(buf.data() + sizeof(*p), src, kPageSize);
		Status s = sink->Append(buf.data(), buf.size());
		if (!s.ok())
			return s;
		(*n)++;
	}
	return Status::Ok();
}

} // namespace

Status PutState(Vm &vm, const std::vector<Stateful *> &devs, LogSink *sink, uint32_t kind,
		uint64_t pos, uint32_t *pages)
{
	Status s = PutPages(vm, sink, kind, pos, pages);
	if (!s.ok())
		return s;
	std::vector<uint8_t> cpu;
	for (unsigned i = 0; i < vm.nr_vcpus(); i++) {
		if (!(s = SaveCpu(vm, &cpu, i)).ok())
			return s.Wrap(fmt::format("vCPU {}", i));
		InitRec(reinterpret_cast<kvm_ft_rec_hdr *>(cpu.data()), KVM_FT_REC_VMM_CKPT_CPU,
			cpu.size(), pos);
		if (!(s = sink->Append(cpu.data(), cpu.size())).ok())
			return s;
	}
	std::vector<uint8_t> state, rec;
	for (Stateful *d : devs) {
		state.clear();
		d->Save(&state);
		auto *r = NewPayloadRec<kvm_ft_vmm_dev>(&rec, KVM_FT_REC_VMM_CKPT_DEV, pos,
							state.data(), state.size());
		r->id = d->state_id();
		r->bytes = static_cast<uint32_t>(state.size());
		if (!(s = sink->Append(rec.data(), rec.size())).ok())
			return s;
	}
	return Status::Ok();
}

Status StateRecords::Add(const kvm_ft_rec_hdr *r, bool *taken)
{
	*taken = true;
	switch (r->type) {
	case KVM_FT_REC_VMM_CKPT_PAGE: {
		const auto *p = reinterpret_cast<const kvm_ft_vmm_page *>(r);
		if (r->len != sizeof(*p) + kPageSize || p->gpa % kPageSize ||
		    p->gpa >= vm_.mem_bytes())
			return Status::Error(EINVAL, fmt::format("bad CKPT_PAGE {:#x}", p->gpa));
		pages_++;
		break;
	}
	case KVM_FT_REC_VMM_CKPT_CPU:
		// The n-th CKPT_CPU is vCPU n's (hdr.vcpu is the ring's on a
		// live log).
		if (++cpus_ > vm_.nr_vcpus())
			return Status::Error(EINVAL, fmt::format(
				"more CKPT_CPU than the VM's {} vCPUs", vm_.nr_vcpus()));
		break;
	case KVM_FT_REC_VMM_CKPT_DEV: {
		const auto *d = reinterpret_cast<const kvm_ft_vmm_dev *>(r);
		if (r->len < sizeof(*d) || d->bytes > r->len - sizeof(*d))
			return Status::Error(EINVAL, "CKPT_DEV: bad length");
		break;
	}
	default:
		*taken = false;
		return Status::Ok();
	}
	recs_.push_back(r);
	return Status::Ok();
}

Status StateRecords::Apply(const std::vector<Stateful *> &devs, bool full)
{
	if (full && madvise(vm_.mem(), vm_.mem_bytes(), MADV_DONTNEED) < 0)
		return Status::Errno("zero guest RAM for a full checkpoint");
	unsigned cpu = 0;
	for (const kvm_ft_rec_hdr *r : recs_) {
		Status s;
		if (r->type == KVM_FT_REC_VMM_CKPT_PAGE) {
			const auto *p = reinterpret_cast<const kvm_ft_vmm_page *>(r);
			memcpy(vm_.mem() + p->gpa, reinterpret_cast<const uint8_t *>(p) + sizeof(*p),
			       kPageSize);
		} else if (r->type == KVM_FT_REC_VMM_CKPT_CPU) {
			s = LoadCpu(vm_, r, cpu++);
		} else {
			const auto *d = reinterpret_cast<const kvm_ft_vmm_dev *>(r);
			s = Status::Error(EINVAL, fmt::format("CKPT_DEV: unknown device {}", d->id));
			for (Stateful *dev : devs)
				if (dev->state_id() == d->id) {
					s = dev->Load(reinterpret_cast<const uint8_t *>(d) + sizeof(*d),
						      d->bytes);
					break;
				}
		}
		if (!s.ok())
			return s;
	}
	return Status::Ok();
}

} // namespace kvmft::vmm
