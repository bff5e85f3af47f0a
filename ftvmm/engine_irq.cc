// engine_irq.cc - what the engine does between two guest runs: deliver
// interrupts as a primary, or apply the log's interrupts and checkpoints
// as a replayer; going live; the engine's own checkpoint state.
#include <linux/kvm_ft_vmm.h>

#include <ctime>
#include <fmt/format.h>

#include "engine.h"
#include "state_io.h"

namespace kvmft::vmm {

Status Engine::BeforeEntry(bool *ended)
{
	if (defer_start_) {
		Status s = StartLog();
		if (!s.ok())
			return s;
	}
	if (src_) {
		Status s = ReplayPending(ended);
		if (!s.ok() || *ended || src_)
			return s;
	}
	return DeliverLive();
}

Status Engine::WaitHalted()
{
	kvm_run *run = m_->vm().run();
	uint64_t next = m_->pit().NextIrq();
	if (!run->if_flag || next == UINT64_MAX)
		return Status::Error(EFAULT, fmt::format(
			"guest halted at rip {:#x} with {} (position {})", Rip(),
			run->if_flag ? "no timer programmed" : "interrupts disabled", pos_));
	Status s = ReleaseHeld();
	if (!s.ok())
		return s;
	uint64_t due = next + jitter_cur_;
	timespec ts{static_cast<time_t>(due / 1000000000), static_cast<long>(due % 1000000000)};
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
	return Status::Ok();
}

Status Engine::DeliverLive()
{
	Pic &pic = m_->pic();
	for (;;) {
		uint64_t now = m_->Now();
		uint64_t next = m_->pit().NextIrq();
		if (next != UINT64_MAX && now >= next + jitter_cur_) {
			if (m_->pit().PollIrq(now))
				pic.Raise(0);
			NewJitter();
		}
		if (!halted_ || pic.Pending())
			break;
		Status s = WaitHalted();
		if (!s.ok())
			return s;
	}
	Status s = ReleaseHeld();
	if (!s.ok())
		return s;
	// One vector per entry: a replayer that went live right after
	// injecting the log's last IRQ must not overwrite it (KVM keeps one).
	if (queued_ || !pic.Pending())
		return Status::Ok();
	kvm_run *run = m_->vm().run();
	if (run->ready_for_interrupt_injection) {
		if (!at_det_ && sink_) {
			s = WriteCheckpoint(*m_, state(), sink_, KVM_FT_CKPT_DELTA, pos_,
					    st_.ckpt.count, &st_.ckpt);
			if (!s.ok())
				return s.Wrap("checkpoint");
		}
		int vec = pic.Ack();
		if (vec < 0)
			return Status::Ok();
		if (!(s = m_->vm().Inject(vec)).ok())
			return s;
		kvm_ft_vmm_irq r;
		InitRec(&r.hdr, KVM_FT_REC_VMM_IRQ, sizeof(r), pos_);
		r.vector = vec;
		r.reserved = 0;
		halted_ = window_ = false;
		queued_ = true;
		st_.irqs++;
		return Append(&r, sizeof(r));
	}
	if (at_det_ && !window_) {
		window_ = true;
		st_.windows++;
		kvm_ft_vmm_irq r;
		InitRec(&r.hdr, KVM_FT_REC_VMM_IRQ_WINDOW, sizeof(r), pos_);
		r.vector = 0;
		r.reserved = 0;
		return Append(&r, sizeof(r));
	}
	return Status::Ok();
}

Status Engine::ReplayInterrupt(const kvm_ft_rec_hdr *r)
{
	const auto *irq = reinterpret_cast<const kvm_ft_vmm_irq *>(r);
	if (r->len != sizeof(*irq) || irq->vector > 255 || irq->reserved)
		return Status::Error(EINVAL, "replay: malformed IRQ record");
	m_->pic().AckVector(irq->vector);
	Status s = m_->vm().Inject(irq->vector);
	if (!s.ok())
		return Diverged(s.msg());
	halted_ = window_ = false;
	queued_ = true;
	st_.irqs++;
	return Status::Ok();
}

Status Engine::ReplayPending(bool *ended)
{
	for (;;) {
		const kvm_ft_rec_hdr *r;
		Status s = src_->Peek(&r);
		if (!s.ok())
			return s.Wrap("replay");
		if (!r) {
			bool live;
			return LogEnded("without an END record", &live);
		}
		bool full = r->type == KVM_FT_REC_VMM_CKPT_BEGIN && r->len == sizeof(kvm_ft_vmm_ckpt) &&
			    reinterpret_cast<const kvm_ft_vmm_ckpt *>(r)->kind == KVM_FT_CKPT_FULL;
		if (r->pos > pos_ && !full)
			break;
		if (r->pos < pos_)
			return Diverged(fmt::format("log record type {:#x} for position {} "
						    "was not reached", r->type, r->pos));
		if (!(s = src_->Next(&r)).ok())
			return s;
		switch (r->type) {
		case KVM_FT_REC_VMM_CKPT_BEGIN: {
			uint64_t at = r->pos;
			s = ApplyCheckpoint(*m_, state(), r, src_, &st_.ckpt);
			if (s.err() == ENODATA) {	// nothing applied
				bool live;
				return LogEnded("inside a checkpoint", &live);
			}
			pos_ = at;
			break;
		}
		case KVM_FT_REC_VMM_IRQ_WINDOW:
			window_ = true;
			st_.windows++;
			break;
		case KVM_FT_REC_VMM_IRQ:
			s = ReplayInterrupt(r);
			break;
		case KVM_FT_REC_VMM_GO_LIVE:
			break;
		case KVM_FT_REC_VMM_END:
			return Diverged("the log ends the VM here; the guest did not end");
		case KVM_FT_REC_VMM_BLK_READ:
			return Diverged(m_->blk() ? "disk read data in the log; the guest read nothing"
						  : "disk read data in the log; replay needs --disk");
		default:
			return Diverged(fmt::format("unexpected record type {:#x} before re-entry",
						    r->type));
		}
		if (!s.ok())
			return s;
	}
	*ended = false;
	if (halted_)
		return Diverged("guest halted; the log injects no interrupt here");
	return Status::Ok();
}

Status Engine::LogEnded(const char *where, bool *live, bool in_exit)
{
	*live = cfg_.go_live;
	if (cfg_.go_live)
		return GoLive(in_exit);
	return Status::Error(ENODATA, fmt::format("replay: log ends at position {} {}",
						  pos_, where));
}

Status Engine::GoLive(bool in_exit)
{
	if (cfg_.before_live) {
		Status s = cfg_.before_live();
		if (!s.ok())
			return s;
	}
	src_ = nullptr;
	st_.went_live_at = pos_;
	if (m_->blk()) {
		// The writes replayed so far, in log order, before any of our own.
		Status s = m_->blk()->disk()->ApplyAll();
		if (!s.ok())
			return s.Wrap("go-live: apply the replayed disk writes");
		SetDiskMode();
	}
	if (!sink_)
		return Status::Ok();
	if (in_exit) {
		// The old log holds this exit's records: the new one starts
		// once the exit is complete (BeforeEntry or Finish).
		defer_start_ = true;
		return Status::Ok();
	}
	return StartLog();
}

// A new log starts self-contained: full state, then GO_LIVE.
Status Engine::StartLog()
{
	defer_start_ = false;
	Status s = WriteCheckpoint(*m_, state(), sink_, KVM_FT_CKPT_FULL, pos_,
				   st_.ckpt.count, &st_.ckpt);
	if (!s.ok())
		return s;
	kvm_ft_vmm_end e;
	InitRec(&e.hdr, KVM_FT_REC_VMM_GO_LIVE, sizeof(e), pos_);
	e.status = 0;
	e.reserved = 0;
	return Append(&e, sizeof(e));
}

uint32_t Engine::state_id() const { return KVM_FT_DEV_ENGINE; }

void Engine::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	w.Put(static_cast<uint8_t>(window_));
	w.Put(static_cast<uint8_t>(halted_));
	w.Put(pos_);
}

Status Engine::Load(const uint8_t *data, size_t len)
{
	StateReader r(data, len);
	uint8_t win = r.Get<uint8_t>(), halted = r.Get<uint8_t>();
	uint64_t pos = r.Get<uint64_t>();
	if (!r.done() || win > 1 || halted > 1)
		return Status::Error(EINVAL, "engine state: malformed");
	window_ = win;
	halted_ = halted;
	pos_ = pos;
	return Status::Ok();
}

} // namespace kvmft::vmm
