// smp_apply.cc - a secondary applying an SMP log's epochs (smp.h).
#include "smp.h"

#include <sys/mman.h>

#include <cstring>
#include <fmt/format.h>

#include "cpu_state.h"
#include "disk.h"
#include "virtio_net.h"

namespace kvmft::vmm {

// Reads one epoch through EPOCH_END; applies it only if it is complete.
Status SmpVm::ApplyEpoch(const kvm_ft_rec_hdr *begin, RecordSource *src, bool *complete)
{
	Vm &vm = m_->vm();
	*complete = false;
	const auto *b = reinterpret_cast<const kvm_ft_vmm_epoch *>(begin);
	if (begin->len != sizeof(*b) || b->number != st_.applied || b->nr_vcpus != vm.nr_vcpus() ||
	    (b->kind != KVM_FT_CKPT_FULL && b->kind != KVM_FT_CKPT_DELTA) ||
	    (b->number == 0) != (b->kind == KVM_FT_CKPT_FULL))
		return Status::Error(EINVAL, fmt::format("epoch {}: bad EPOCH_BEGIN", st_.applied));
	std::vector<const kvm_ft_rec_hdr *> recs;
	const kvm_ft_vmm_epoch *end = nullptr;
	uint32_t pages = 0, cpus = 0;
	uint64_t console = 0; // bytes in the epoch's DATA records
	while (!end) {
		const kvm_ft_rec_hdr *r;
		Status s = src->Next(&r);
		if (!s.ok())
			return s.Wrap(fmt::format("epoch {}", b->number));
		if (!r)
			return Status::Ok(); // truncated: not applied
		if (r->pos != b->number)
			return Status::Error(EINVAL, fmt::format(
				"epoch {}: record of epoch {} inside it", b->number, r->pos));
		switch (r->type) {
		case KVM_FT_REC_VMM_CKPT_PAGE: {
			const auto *p = reinterpret_cast<const kvm_ft_vmm_page *>(r);
			if (r->len != sizeof(*p) + kPageSize || p->gpa % kPageSize ||
			    p->gpa >= vm.mem_bytes())
				return Status::Error(EINVAL, fmt::format(
					"epoch {}: bad CKPT_PAGE {:#x}", b->number, p->gpa));
			pages++;
			break;
		}
		case KVM_FT_REC_VMM_CKPT_CPU:
			// The n-th CKPT_CPU is vCPU n's (hdr.vcpu is the
			// ring's on a live log).
			if (++cpus > vm.nr_vcpus())
				return Status::Error(EINVAL, fmt::format(
					"epoch {}: more than {} CKPT_CPU", b->number, vm.nr_vcpus()));
			break;
		case KVM_FT_REC_VMM_CKPT_DEV:
			break;
		case KVM_FT_REC_VMM_DATA: {
			const auto *d = reinterpret_cast<const kvm_ft_vmm_data *>(r);
			if (r->len < sizeof(*d) || d->bytes > r->len - sizeof(*d) ||
			    d->bytes > kEpochDataMax)
				return Status::Error(EINVAL, fmt::format(
					"epoch {}: bad console DATA record {}", b->number, r->seq));
			console += d->bytes;
			break;
		}
		case KVM_FT_REC_VMM_EPOCH_END:
			end = reinterpret_cast<const kvm_ft_vmm_epoch *>(r);
			if (r->len != sizeof(*end) || end->number != b->number ||
			    end->pages != pages || cpus != vm.nr_vcpus())
				return Status::Error(EINVAL, fmt::format(
					"epoch {}: EPOCH_END announces {} pages, {} seen, {} of {} "
					"vCPUs", b->number, end->pages, pages, cpus, vm.nr_vcpus()));
			// Epoch 0 of a log starts the count where the guest
			// was (a new primary that went live); later epochs
			// carry exactly the bytes written since.
			if (b->number && end->console_bytes != st_.console_bytes + console)
				return Status::Error(EINVAL, fmt::format(
					"epoch {}: EPOCH_END counts {} console bytes, the epochs "
					"so far carried {}", b->number, end->console_bytes,
					st_.console_bytes + console));
			continue;
		default:
			return Status::Error(EINVAL, fmt::format(
				"epoch {}: unexpected record type {:#x}", b->number, r->type));
		}
		recs.push_back(r);
	}
	if (b->kind == KVM_FT_CKPT_FULL &&
	    madvise(vm.mem(), vm.mem_bytes(), MADV_DONTNEED) < 0)
		return Status::Errno("zero guest RAM for a full epoch");
	unsigned cpu = 0;
	for (const kvm_ft_rec_hdr *r : recs) {
		Status s;
		if (r->type == KVM_FT_REC_VMM_CKPT_PAGE) {
			const auto *p = reinterpret_cast<const kvm_ft_vmm_page *>(r);
			memcpy(vm.mem() + p->gpa, reinterpret_cast<const uint8_t *>(p) + sizeof(*p),
			       kPageSize);
			// A secondary that goes live and records logs these
			// pages in its first epoch anyway (FULL).
		} else if (r->type == KVM_FT_REC_VMM_CKPT_CPU) {
			s = LoadCpu(vm, r, cpu++);
		} else if (r->type == KVM_FT_REC_VMM_DATA) {
			continue; // printed once the whole epoch is applied
		} else {
			const auto *d = reinterpret_cast<const kvm_ft_vmm_dev *>(r);
			if (r->len < sizeof(*d) || d->bytes > r->len - sizeof(*d))
				return Status::Error(EINVAL, "CKPT_DEV: bad length");
			s = Status::Error(EINVAL, fmt::format("CKPT_DEV: unknown device {}", d->id));
			for (Stateful *dev : m_->devices())
				if (dev->state_id() == d->id)
					s = dev->Load(reinterpret_cast<const uint8_t *>(d) + sizeof(*d),
						      d->bytes);
		}
		if (!s.ok())
			return s.Wrap(fmt::format("epoch {}", b->number));
	}
	if (end->mem_hash) {
		uint64_t h = vm.MemHash();
		if (h != end->mem_hash)
			return Status::Error(EPROTO, fmt::format(
				"epoch {} (EPOCH_END record {}): memory hash {:016x} after applying "
				"it, the primary had {:016x}", b->number, end->hdr.seq, h,
				end->mem_hash));
	}
	// The epoch's console output, as the primary's guest wrote it.
	for (const kvm_ft_rec_hdr *r : recs) {
		if (r->type != KVM_FT_REC_VMM_DATA)
			continue;
		const auto *d = reinterpret_cast<const kvm_ft_vmm_data *>(r);
		const uint8_t *c = reinterpret_cast<const uint8_t *>(d) + sizeof(*d);
		for (uint32_t i = 0; i < d->bytes; i++)
			m_->console().Put(c[i]);
	}
	st_.applied++;
	st_.pages += pages;
	st_.console_bytes = end->console_bytes;
	st_.last_hash = end->mem_hash;
	*complete = true;
	return Status::Ok();
}

// Between epochs: the primary put every frame with seq < sent_pos on the
// wire. It holds each frame until its epoch is acknowledged, so it cannot
// have sent more than the guest had sent by the last epoch applied.
Status SmpVm::NetSent(const kvm_ft_rec_hdr *r)
{
	const auto *n = reinterpret_cast<const kvm_ft_vmm_net_sent *>(r);
	if (r->len != sizeof(*n))
		return Status::Error(EINVAL, fmt::format("NET_SENT record {}: bad length {}",
							 r->seq, r->len));
	if (!m_->net())
		return Status::Error(EINVAL, fmt::format(
			"NET_SENT record {}: the primary has a network, this VM none (--net TAP)",
			r->seq));
	NetLink *l = m_->net()->link();
	if (!st_.applied || n->sent_pos > l->next_seq())
		return Status::Error(EINVAL, fmt::format(
			"NET_SENT record {} after {} epochs: {} frames sent, but the guest had "
			"sent {}", r->seq, st_.applied, n->sent_pos,
			st_.applied ? l->next_seq() : 0));
	l->ForgetSent(n->sent_pos);
	return Status::Ok();
}

Status SmpVm::ApplyLog(RecordSource *src, int *status)
{
	*status = -1;
	for (;;) {
		const kvm_ft_rec_hdr *r;
		Status s = src->Next(&r);
		if (!s.ok())
			return s.Wrap(fmt::format("after {} epochs", st_.applied));
		if (!r)
			return Status::Ok();
		if (r->type == KVM_FT_REC_VMM_END) {
			const auto *e = reinterpret_cast<const kvm_ft_vmm_end *>(r);
			if (r->len != sizeof(*e))
				return Status::Error(EINVAL, "END: bad record");
			*status = static_cast<int>(e->status);
			st_.ended = true;
			return Status::Ok();
		}
		if (r->type == KVM_FT_REC_VMM_NET_SENT) {
			if (!(s = NetSent(r)).ok())
				return s;
			continue;
		}
		if (r->type != KVM_FT_REC_VMM_EPOCH_BEGIN)
			return Status::Error(EINVAL, fmt::format(
				"after {} epochs: record type {:#x} where an epoch or END was due",
				st_.applied, r->type));
		bool complete = false;
		if (!(s = ApplyEpoch(r, src, &complete)).ok())
			return s;
		if (!complete) {
			st_.torn_epoch = true;
			return Status::Ok();
		}
	}
}

} // namespace kvmft::vmm
