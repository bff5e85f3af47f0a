// ring_source.cc - live replay source (ring_source.h).
#include "ftlog/ring_source.h"

#include <cstring>
#include <fmt/format.h>
#include <linux/kvm_ft_vmm.h>

#include "base/clock.h"

namespace kvmft::vmm {

Status RingSource::Fill()
{
	uint64_t t0 = MonotonicNs();
	while (!ended_) {
		uint64_t lost = 0;
		size_t n = 0;
		Status s = cons_.Drain([&](const kvm_ft_rec_hdr &h) {
			if (h.flags & KVM_FT_RECF_KERNEL) {
				// kvm_ft.ko's probe records: not replayed.
				if (h.type == KVM_FT_REC_LOST && h.len >= sizeof(kvm_ft_rec_lost)) {
					kernel_lost_ += reinterpret_cast<const kvm_ft_rec_lost &>(h).count;
					// The lost ones may include the next exit's
					// port record: the last one seen is not its.
					kpio_.hdr.type = 0;
				} else if (h.type != KVM_FT_REC_LOST)
					kernel_records_++;
				if (h.type == KVM_FT_REC_PIO && h.len >= sizeof(kvm_ft_rec_pio))
					memcpy(&kpio_, &h, sizeof(kpio_));
				return;
			}
			// ftvmm's port write record of an exit against the
			// module's one of the same exit (the last one seen since).
			// Port reads are not checked: KVM traces them when the
			// vCPU re-enters with the value, after ftvmm's record.
			const auto &p = reinterpret_cast<const kvm_ft_rec_pio &>(h);
			if (h.type == KVM_FT_REC_VMM_WRAP_FIRST + int{KVM_FT_REC_PIO} &&
			    h.len >= sizeof(kvm_ft_rec_pio) && p.dir == KVM_FT_DIR_OUT &&
			    kpio_.hdr.type) {
				pio_checked_++;
				if (p.port != kpio_.port || p.dir != kpio_.dir || p.size != kpio_.size)
					pio_differ_++;
				kpio_.hdr.type = 0;
			}
			if (h.type == KVM_FT_REC_LOST) {
				lost++;
				return;
			}
			vmm_records_++;
			q_.emplace_back((h.len + 7) / 8);
			memcpy(q_.back().data(), &h, h.len);
			// ftvmm's PIO/MMIO record sent through a kvm_ft.ko ring
			auto *c = reinterpret_cast<kvm_ft_rec_hdr *>(q_.back().data());
			if (c->type >= KVM_FT_REC_VMM_WRAP_FIRST && c->type <= KVM_FT_REC_VMM_WRAP_LAST)
				c->type = static_cast<uint16_t>(c->type - KVM_FT_REC_VMM_WRAP_FIRST);
		}, &n, 256);
		if (!s.ok())
			return s.Wrap("log ring");
		if (lost)
			return Status::Error(EIO, "log ring: records were lost; the log has a hole");
		if (!(s = DrainOthers(&n)).ok())
			return s;
		if (next_ < q_.size())
			return Status::Ok();
		// kvm_ft.ko records only: the primary is alive, the log not silent.
		if (n)
			t0 = MonotonicNs();
		if (MonotonicNs() - t0 > idle_ns_)
			ended_ = true;
		else
			rings_->Wait(50);
	}
	return Status::Ok();
}

Status RingSource::DrainOthers(size_t *n)
{
	for (size_t i = 0; i < others_.size(); i++) {
		bool vmm = false;
		size_t got = 0;
		Status s = others_[i].Drain([&](const kvm_ft_rec_hdr &h) {
			if (!(h.flags & KVM_FT_RECF_KERNEL))
				vmm = true;
			else if (h.type == KVM_FT_REC_LOST && h.len >= sizeof(kvm_ft_rec_lost))
				kernel_lost_ += reinterpret_cast<const kvm_ft_rec_lost &>(h).count;
			else if (h.type != KVM_FT_REC_LOST) {
				kernel_records_++;
				kernel_other_++;
			}
		}, &got);
		if (!s.ok())
			return s.Wrap(fmt::format("log ring {}", i + 1));
		if (vmm)
			return Status::Error(EPROTO, fmt::format(
				"log ring {}: a VMM record outside ring 0", i + 1));
		*n += got;
	}
	return Status::Ok();
}

Status RingSource::Peek(const kvm_ft_rec_hdr **rec)
{
	*rec = nullptr;
	if (next_ == q_.size()) {
		Status s = Fill();
		if (!s.ok())
			return s;
	}
	if (next_ < q_.size())
		*rec = At(next_);
	return Status::Ok();
}

Status RingSource::Next(const kvm_ft_rec_hdr **rec)
{
	Status s = Peek(rec);
	if (!s.ok() || !*rec)
		return s;
	next_++;
	// Records before an exit (1 vCPU) or before an epoch or NET_SENT
	// (SMP: records between epochs) are no longer needed.
	uint16_t t = (*rec)->type;
	if ((t == KVM_FT_REC_VMM_EXIT || t == KVM_FT_REC_VMM_EPOCH_BEGIN ||
	     t == KVM_FT_REC_VMM_NET_SENT) && next_ > 1) {
		q_.erase(q_.begin(), q_.begin() + (next_ - 1));
		next_ = 1;
		*rec = At(0);
	}
	return Status::Ok();
}

} // namespace kvmft::vmm
