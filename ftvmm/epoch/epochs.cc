// epochs.cc - the epochs a primary runs and records (epochs.h); the vCPU
// threads are in vcpus.cc, the secondary's side in apply.cc.
#include "epoch/epochs.h"

#include <algorithm>
#include <fmt/format.h>

#include "checkpoint/codec.h"
#include "ftlog/record.h"

namespace kvmft::vmm {

Epochs::Epochs(Machine *m, const ModeConfig &cfg) : m_(m), cfg_(cfg), out_(m), vcpus_(m) {}

Epochs::~Epochs() = default;

void Epochs::SetStopPoints(uint64_t every, std::function<Status()> fn)
{
	stop_every_ = every ? every : 1;
	at_epoch_ = std::move(fn);
}

void Epochs::SetAck(std::function<uint64_t()> ack)
{
	out_.SetAck(std::move(ack), sink_);
}













Status Epochs::LogNetSent()
{
	if (!sink_ || !out_.held_by_ack() || !m_->net())
		return Status::Ok();
	bool logged = false;
	Status s = LogSent(sink_, number_, m_->net()->link()->sent_count(), &net_sent_logged_,
			   &logged);
	return s.ok() && logged ? sink_->Flush() : s;
}

Status Epochs::WriteEpoch()
{
	Vm &vm = m_->vm();
	const uint64_t t0 = MonotonicNs();
	CountingSink out(sink_);
	const uint32_t kind = number_ ? KVM_FT_CKPT_DELTA : KVM_FT_CKPT_FULL;
	kvm_ft_vmm_epoch e{};
	InitRec(&e.hdr, KVM_FT_REC_VMM_EPOCH_BEGIN, sizeof(e), number_);
	e.number = number_;
	e.kind = kind;
	e.nr_vcpus = vm.nr_vcpus();
	Status s = out.Append(&e, sizeof(e));
	uint32_t pages = 0;
	if (s.ok())
		s = PutState(vm, m_->devices(), &out, kind, number_, &pages);
	if (!s.ok())
		return s;
	// The console bytes the guest wrote in the epoch, so that a
	// secondary applying it prints them too: a failover then loses no
	// byte the primary had not released yet.
	const std::string console = m_->console().TakeCaptured();
	std::vector<uint8_t> rec;
	for (size_t off = 0; off < console.size(); off += kEpochDataMax) {
		const size_t n = std::min(console.size() - off, kEpochDataMax);
		auto *d = NewPayloadRec<kvm_ft_vmm_data>(&rec, KVM_FT_REC_VMM_DATA, number_,
							 console.data() + off, n);
		d->bytes = static_cast<uint32_t>(n);
		if (!(s = out.Append(rec.data(), rec.size())).ok())
			return s;
	}
	InitRec(&e.hdr, KVM_FT_REC_VMM_EPOCH_END, sizeof(e), number_);
	e.pages = pages;
	e.mem_hash = cfg_.hash_epochs ? vm.MemHash() : 0;
	e.console_bytes = m_->console().produced();
	if (!(s = out.Append(&e, sizeof(e))).ok())
		return s;
	if (!(s = sink_->Flush()).ok())
		return s;
	// The epoch's console bytes and disk writes wait for the ACK of its
	// end (the vCPUs are stopped: no write is being added). Without an
	// ACK (a log file) its disk writes, held so that the epoch's state
	// carries them, are written now that it is logged.
	m_->console().Retag(kEpochPending, sink_->tag());
	if (m_->blk()) {
		std::lock_guard<std::mutex> g(m_->io_mu());
		Disk *disk = m_->blk()->disk();
		disk->Retag(kEpochPending, sink_->tag());
		if (!out_.held_by_ack() && disk->mode() == Disk::kHold &&
		    !(s = disk->Release(sink_->tag())).ok())
			return s.Wrap("write the epoch's disk writes");
	}
	if (m_->net())
		m_->net()->link()->Retag(kEpochPending, sink_->tag());
	number_++;
	st_.epochs++;
	st_.pages += pages;
	st_.epoch_bytes.push_back(out.bytes());
	if (number_ > 1) // epoch 0 is written before the vCPUs start
		st_.stop_ns.push_back(MonotonicNs() - t0);
	return Status::Ok();
}

Status Epochs::Run(int *status)
{
	Status s;
	const bool held = out_.held_by_ack();
	if (held)
		m_->console().set_tag(kEpochPending);
	// Going live (a secondary that applied epochs): the last epoch's
	// pending disk writes and the frames the primary did not report sent.
	if (!(s = GoLiveOutputs(*m_, &st_.net_resent)).ok())
		return s;
	if (Disk *disk = m_->blk() ? m_->blk()->disk() : nullptr) {
		// Recorded, writes are held until their epoch is logged: every
		// one is then in the state of the epoch that issued it, so that
		// a secondary with a disk of its own gets them all.
		disk->set_mode(held || sink_ ? Disk::kHold : Disk::kDirect);
		disk->set_tag(kEpochPending);
	}
	if (VirtioNet *net = m_->net()) {
		net->link()->set_mode(held ? NetLink::kHold : NetLink::kDirect);
		net->link()->set_tag(kEpochPending, 0);
	}
	number_ = 0; // a new log (also after going live) starts FULL
	net_sent_logged_ = 0;
	m_->console().set_capture(sink_ != nullptr);
	// Epochs are deltas of KVM's dirty log, from this FULL epoch 0 on.
	if (sink_ && !(s = m_->vm().EnableDirtyLog()).ok())
		return s;
	if (sink_ && !(s = WriteEpoch()).ok())
		return s.Wrap("epoch 0");
	vcpus_.Start(sink_ && held && cfg_.min_epoch_ns);
	uint64_t epoch_start = MonotonicNs();
	uint64_t next_epoch = epoch_start + cfg_.epoch_ns;
	// A held frame ends its epoch at epoch_start + min_epoch_ns.
	const uint64_t early_ns = std::min(cfg_.min_epoch_ns, cfg_.epoch_ns);
	bool shortened = false; // this epoch ends early
	uint64_t stops = 0;	// epoch ends, for SetStopPoints
	for (;;) {
		uint64_t now = MonotonicNs();
		uint64_t wake = now + cfg_.slice_ns;
		const bool epochs = sink_ || at_epoch_;
		const bool tx_seen = vcpus_.TxSent();
		if (epochs && tx_seen && !shortened && epoch_start + early_ns < next_epoch) {
			shortened = true;
			next_epoch = epoch_start + early_ns;
		}
		if (epochs && next_epoch < wake)
			wake = next_epoch;
		if (!vcpus_.Wait(wake, tx_seen))
			break;
		now = MonotonicNs();
		if (epochs && now >= next_epoch) {
			if (!vcpus_.Stop())
				break;
			if (shortened)
				st_.early_epochs++;
			shortened = false;
			s = sink_ ? WriteEpoch() : Status::Ok();
			if (s.ok() && at_epoch_ && ++stops % stop_every_ == 0)
				s = at_epoch_();
			if (!s.ok()) {
				vcpus_.Fail(s.Wrap(fmt::format("epoch {}", number_)));
				break;
			}
			vcpus_.Resume();
			if (held) {
				if (!(s = out_.Release()).ok() || !(s = LogNetSent()).ok()) {
					vcpus_.Fail(s);
					break;
				}
			}
			epoch_start = MonotonicNs();
			next_epoch = epoch_start + cfg_.epoch_ns;
		} else {
			vcpus_.KickIfTimerDue();
		}
	}
	// The guest ended (or failed): stop the others, keep its last state.
	s = vcpus_.Join(status);
	st_.net_rx = vcpus_.net_rx();
	if (!s.ok())
		return s;
	if (sink_) {
		// The last epoch covers the last console bytes; END follows.
		if (!(s = WriteEpoch()).ok())
			return s.Wrap("last epoch");
		kvm_ft_vmm_end end{};
		InitRec(&end.hdr, KVM_FT_REC_VMM_END, sizeof(end), number_);
		end.status = static_cast<uint32_t>(*status);
		if (!(s = sink_->Append(&end, sizeof(end))).ok() || !(s = sink_->Flush()).ok())
			return s;
	}
	// The last outputs go out once the ACK covers them.
	if (!(s = out_.Drain(cfg_.hold_timeout_ns)).ok())
		return s;
	m_->console().Flush();
	return Status::Ok();
}

} // namespace kvmft::vmm
