// apply.cc - a secondary applying the epochs of a log (epochs.h), going
// live from the last complete one, and the mode's statistics.
#include "epoch/epochs.h"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "checkpoint/codec.h"

namespace kvmft::vmm {

// Reads one epoch through EPOCH_END; applies it only if it is complete.
Status Epochs::ApplyEpoch(const kvm_ft_rec_hdr *begin, RecordSource *src, bool *complete)
{
	Vm &vm = m_->vm();
	*complete = false;
	const auto *b = reinterpret_cast<const kvm_ft_vmm_epoch *>(begin);
	if (begin->len != sizeof(*b) || b->number != st_.applied || b->nr_vcpus != vm.nr_vcpus() ||
	    (b->kind != KVM_FT_CKPT_FULL && b->kind != KVM_FT_CKPT_DELTA) ||
	    (b->number == 0) != (b->kind == KVM_FT_CKPT_FULL) || b->reserved)
		return Status::Error(EINVAL, fmt::format("epoch {}: bad EPOCH_BEGIN", st_.applied));
	StateRecords state(vm);
	std::vector<const kvm_ft_vmm_data *> data; // the epoch's console bytes
	const kvm_ft_vmm_epoch *end = nullptr;
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
		bool taken = false;
		if (!(s = state.Add(r, &taken)).ok())
			return s.Wrap(fmt::format("epoch {}", b->number));
		if (taken)
			continue;
		switch (r->type) {
		case KVM_FT_REC_VMM_DATA: {
			const auto *d = reinterpret_cast<const kvm_ft_vmm_data *>(r);
			if (r->len < sizeof(*d) || d->bytes > r->len - sizeof(*d) ||
			    d->bytes > kEpochDataMax || d->reserved)
				return Status::Error(EINVAL, fmt::format(
					"epoch {}: bad console DATA record {}", b->number, r->seq));
			console += d->bytes;
			data.push_back(d);
			break;
		}
		case KVM_FT_REC_VMM_EPOCH_END:
			end = reinterpret_cast<const kvm_ft_vmm_epoch *>(r);
			if (r->len != sizeof(*end) || end->number != b->number ||
			    end->pages != state.pages() || state.cpus() != vm.nr_vcpus() ||
			    end->reserved)
				return Status::Error(EINVAL, fmt::format(
					"epoch {}: EPOCH_END announces {} pages, {} seen, {} of {} "
					"vCPUs", b->number, end->pages, state.pages(), state.cpus(),
					vm.nr_vcpus()));
			// Epoch 0 of a log starts the count where the guest
			// was (a new primary that went live); later epochs
			// carry exactly the bytes written since.
			if (b->number && end->console_bytes != st_.console_bytes + console)
				return Status::Error(EINVAL, fmt::format(
					"epoch {}: EPOCH_END counts {} console bytes, the epochs "
					"so far carried {}", b->number, end->console_bytes,
					st_.console_bytes + console));
			break;
		default:
			return Status::Error(EINVAL, fmt::format(
				"epoch {}: unexpected record type {:#x}", b->number, r->type));
		}
	}
	// A secondary that goes live and records logs these pages in its
	// first epoch anyway (FULL).
	Status s = state.Apply(m_->devices(), b->kind == KVM_FT_CKPT_FULL);
	if (!s.ok())
		return s.Wrap(fmt::format("epoch {}", b->number));
	if (end->mem_hash) {
		uint64_t h = vm.MemHash();
		if (h != end->mem_hash)
			return Status::Error(EPROTO, fmt::format(
				"epoch {} (EPOCH_END record {}): memory hash {:016x} after applying "
				"it, the primary had {:016x}", b->number, end->hdr.seq, h,
				end->mem_hash));
	}
	// The epoch's console output, as the primary's guest wrote it.
	for (const kvm_ft_vmm_data *d : data) {
		const uint8_t *c = reinterpret_cast<const uint8_t *>(d) + sizeof(*d);
		for (uint32_t i = 0; i < d->bytes; i++)
			m_->console().Put(c[i]);
	}
	st_.applied++;
	st_.pages += state.pages();
	st_.console_bytes = end->console_bytes;
	st_.last_hash = end->mem_hash;
	*complete = true;
	return Status::Ok();
}

// Between epochs: the primary put every frame with seq < sent_frames on the
// wire. It holds each frame until its epoch is acknowledged, so it cannot
// have sent more than the guest had sent by the last epoch applied.
Status Epochs::NetSent(const kvm_ft_rec_hdr *r)
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
	if (!st_.applied || n->sent_frames > l->next_seq())
		return Status::Error(EINVAL, fmt::format(
			"NET_SENT record {} after {} epochs: {} frames sent, but the guest had "
			"sent {}", r->seq, st_.applied, n->sent_frames,
			st_.applied ? l->next_seq() : 0));
	l->ForgetSent(n->sent_frames);
	return Status::Ok();
}

Status Epochs::ApplyLog(RecordSource *src, int *status)
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
			if (r->len != sizeof(*e) || e->reserved)
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

namespace {
uint64_t Percentile(std::vector<uint64_t> v, double p)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t i = static_cast<size_t>(p / 100 * (v.size() - 1) + 0.5);
	return v[std::min(i, v.size() - 1)];
}
} // namespace

void Epochs::AddStats(nlohmann::json *j) const
{
	const EpochStats &st = st_;
	j->update({
		{"vcpus", m_->vm().nr_vcpus()},
		{"epochs", st.epochs},
		{"early_epochs", st.early_epochs},
		{"epochs_applied", st.applied},
		{"epoch_pages", st.pages},
		{"epoch_bytes", {{"p50", Percentile(st.epoch_bytes, 50)},
				 {"max", Percentile(st.epoch_bytes, 100)}}},
		{"stop_us", {{"p50", Percentile(st.stop_ns, 50) / 1000.0},
			     {"max", Percentile(st.stop_ns, 100) / 1000.0}}},
		{"applied_console_bytes", st.console_bytes},
		{"applied_mem_hash", fmt::format("{:016x}", st.last_hash)},
		{"torn_epoch", st.torn_epoch},
	});
}

Status Epochs::Follow(RecordSource *src, int *status)
{
	auto say = [this](const std::string &what) {
		if (cfg_.say)
			cfg_.say(what);
	};
	// Each epoch's pending disk writes: written at go-live, or to a
	// private copy as the epochs are applied; its held frames: sent at
	// go-live (GoLiveOutputs).
	if (m_->blk())
		m_->blk()->disk()->set_mode(cfg_.private_disk ? Disk::kEpochsPrivate : Disk::kEpochs);
	if (m_->net())
		m_->net()->link()->set_mode(NetLink::kEpochs);
	Status s = ApplyLog(src, status);
	if (!s.ok()) {
		say(fmt::format("{} epochs applied", st_.applied));
		return s;
	}
	say(fmt::format("{} epochs applied{}", st_.applied,
			st_.torn_epoch ? "; an incomplete epoch at the end of the log discarded"
				       : ""));
	if (st_.ended)
		return Status::Ok();
	if (!cfg_.go_live)
		return Status::Error(ENODATA, fmt::format(
			"the log ends after epoch {} without END", st_.applied));
	if (!st_.applied)
		return Status::Error(ENODATA, "the log holds no complete epoch: nothing to go "
				     "live from");
	if (cfg_.before_live && !(s = cfg_.before_live()).ok())
		return s;
	say(fmt::format("going live from epoch {}", st_.applied - 1));
	return Run(status);
}

} // namespace kvmft::vmm
