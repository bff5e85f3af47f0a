// between_exits.cc - what RecordReplay does between two guest runs: deliver
// interrupts as a primary, or apply the log's interrupts and checkpoints
// as a replayer; going live; the engine's own checkpoint state.
#include <linux/kvm_ft_vmm.h>

#include <poll.h>

#include <ctime>
#include <fmt/format.h>

#include "replay/record_replay.h"
#include "hw/state_io.h"

namespace kvmft::vmm {

Status RecordReplay::BeforeEntry(bool *ended)
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

Status RecordReplay::WaitHalted()
{
	kvm_run *run = m_->vm().run();
	uint64_t next = m_->pit().NextIrq();
	VirtioNet *net = m_->net();
	bool rx = net && net->CanReceive();
	if (!run->if_flag || (next == UINT64_MAX && !rx))
		return Status::Error(EFAULT, fmt::format(
			"guest halted at rip {:#x} with {} (position {})", Rip(),
			!run->if_flag ? "interrupts disabled"
			: net ? "no timer programmed and no receive buffer offered"
			      : "no timer programmed", pos_));
	Status s = out_.Release();
	if (!s.ok())
		return s;
	uint64_t due = next == UINT64_MAX ? UINT64_MAX : next + jitter_cur_;
	if (!rx) {
		timespec ts{static_cast<time_t>(due / 1000000000), static_cast<long>(due % 1000000000)};
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
		return Status::Ok();
	}
	// A frame or the timer, whichever first. Held outputs are released
	// by the releaser thread meanwhile; without one, poll every 1 ms.
	uint64_t now = m_->Now();
	uint64_t wait = due == UINT64_MAX ? UINT64_MAX : due > now ? due - now : 0;
	if (out_.held_by_ack() && out_.Held())
		wait = std::min<uint64_t>(wait, 1000000);
	timespec to{static_cast<time_t>(wait / 1000000000), static_cast<long>(wait % 1000000000)};
	pollfd p{net->link()->fd(), POLLIN, 0};
	ppoll(&p, 1, wait == UINT64_MAX ? nullptr : &to, nullptr);
	return Status::Ok();
}

Status RecordReplay::CheckpointHere()
{
	if (at_det_ || ckpt_here_ || !sink_)
		return Status::Ok();
	// A recording VM runs without KVM's dirty log until it needs one:
	// the log maps guest RAM in 4 KiB pages and write-protects them, a
	// fault per page first written, which a guest that always exits in
	// time never needs. Its first checkpoint turns the log on and is
	// FULL (every non-zero page); the next ones are deltas.
	uint32_t kind = KVM_FT_CKPT_DELTA;
	Status s;
	if (!m_->vm().dirty_log()) {
		if (!(s = m_->vm().EnableDirtyLog()).ok())
			return s.Wrap("checkpoint");
		kind = KVM_FT_CKPT_FULL;
	}
	s = WriteCheckpoint(*m_, state(), sink_, kind, pos_, st_.ckpt.count, &st_.ckpt);
	if (!s.ok())
		return s.Wrap("checkpoint");
	ckpt_here_ = true;
	return Status::Ok();
}

Status RecordReplay::NetInput()
{
	VirtioNet *net = m_->net();
	if (!net)
		return Status::Ok();
	uint8_t buf[NetLink::kMaxFrame];
	// A bounded batch per stop: a flood does not starve the guest.
	for (int i = 0; i < 64 && net->CanReceive(); i++) {
		size_t n = net->link()->Receive(buf);
		if (!n)
			break;
		if (sink_) {
			Status s = CheckpointHere();
			if (!s.ok())
				return s;
			std::vector<uint8_t> rec;
			NewPayloadRec<kvm_ft_vmm_net_rx>(&rec, KVM_FT_REC_VMM_NET_RX, pos_, buf, n)
				->bytes = static_cast<uint32_t>(n);
			if (!(s = Append(rec.data(), rec.size())).ok())
				return s;
		}
		VirtioNet::RxResult r = net->Receive(buf, n);
		if (r == VirtioNet::kDelivered)
			st_.net_rx++;
		else if (r == VirtioNet::kBadChain)
			break;
	}
	return Status::Ok();
}

Status RecordReplay::LogNetSent()
{
	if (!sink_ || !m_->net())
		return Status::Ok();
	return LogSent(sink_, pos_, m_->net()->link()->sent_pos(), &net_sent_logged_);
}

Status RecordReplay::LogDiskWritten()
{
	if (!sink_ || !m_->blk())
		return Status::Ok();
	uint64_t p = m_->blk()->disk()->written_pos();
	if (p <= disk_written_logged_)
		return Status::Ok();
	disk_written_logged_ = p;
	kvm_ft_vmm_disk_written r;
	InitRec(&r.hdr, KVM_FT_REC_VMM_DISK_WRITTEN, sizeof(r), pos_);
	r.written_pos = p;
	return Append(&r, sizeof(r));
}

Status RecordReplay::DeliverLive()
{
	Pic &pic = m_->pic();
	Status s;
	for (;;) {
		uint64_t now = m_->Now();
		uint64_t next = m_->pit().NextIrq();
		if (next != UINT64_MAX && now >= next + jitter_cur_) {
			if (m_->pit().PollIrq(now))
				pic.Raise(0);
			NewJitter();
		}
		if (!(s = NetInput()).ok())
			return s;
		if (!halted_ || pic.Pending())
			break;
		if (!(s = WaitHalted()).ok())
			return s;
	}
	if (!(s = out_.Release()).ok() || !(s = LogNetSent()).ok() ||
	    !(s = LogDiskWritten()).ok())
		return s;
	// One vector per entry: a replayer that went live right after
	// injecting the log's last IRQ must not overwrite it (KVM keeps one).
	if (queued_ || !pic.Pending())
		return Status::Ok();
	kvm_run *run = m_->vm().run();
	if (run->ready_for_interrupt_injection) {
		if (!(s = CheckpointHere()).ok())
			return s;
		int vec = pic.Ack();		if (vec < 0)
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

Status RecordReplay::ReplayInterrupt(const kvm_ft_rec_hdr *r)
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

Status RecordReplay::ReplayNetRx(const kvm_ft_rec_hdr *r)
{
	const auto *x = reinterpret_cast<const kvm_ft_vmm_net_rx *>(r);
	if (r->len < sizeof(*x) || x->bytes > r->len - sizeof(*x) || x->reserved ||
	    x->bytes < VirtioNet::kMinFrame || x->bytes > VirtioNet::kMaxFrame)
		return Status::Error(EINVAL, "replay: malformed NET_RX record");
	VirtioNet *net = m_->net();
	if (!net)
		return Diverged("network frame in the log; replay needs --net");
	if (!net->CanReceive())
		return Diverged("the log delivers a network frame here; the guest offers "
				"no receive buffer");
	if (net->Receive(reinterpret_cast<const uint8_t *>(x + 1), x->bytes) ==
	    VirtioNet::kDelivered)
		st_.net_rx++;
	return Status::Ok();
}

Status RecordReplay::ReplayPending(bool *ended)
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
			if (r->len != sizeof(kvm_ft_vmm_end) ||
			    reinterpret_cast<const kvm_ft_vmm_end *>(r)->reserved)
				return Status::Error(EINVAL, "replay: malformed GO_LIVE record");
			break;
		case KVM_FT_REC_VMM_END:
			return Diverged("the log ends the VM here; the guest did not end");
		case KVM_FT_REC_VMM_BLK_READ:
			return Diverged(m_->blk() ? "disk read data in the log; the guest read nothing"
						  : "disk read data in the log; replay needs --disk");
		case KVM_FT_REC_VMM_NET_RX:
			s = ReplayNetRx(r);
			break;
		case KVM_FT_REC_VMM_NET_SENT:
			if (r->len != sizeof(kvm_ft_vmm_net_sent))
				return Status::Error(EINVAL, "replay: malformed NET_SENT record");
			if (m_->net())
				m_->net()->link()->Forget(
					reinterpret_cast<const kvm_ft_vmm_net_sent *>(r)->sent_pos);
			break;
		case KVM_FT_REC_VMM_DISK_WRITTEN: {
			const auto *d = reinterpret_cast<const kvm_ft_vmm_disk_written *>(r);
			if (r->len != sizeof(*d) || d->written_pos > r->pos)
				return Status::Error(EINVAL, "replay: malformed DISK_WRITTEN record");
			if (!m_->blk())
				return Diverged("disk writes in the log; replay needs --disk");
			m_->blk()->disk()->Forget(d->written_pos);
			break;
		}
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

Status RecordReplay::LogEnded(const char *where, bool *live, bool in_exit)
{
	*live = cfg_.go_live;
	if (cfg_.go_live)
		return GoLive(in_exit);
	return Status::Error(ENODATA, fmt::format("replay: log ends at position {} {}",
						  pos_, where));
}

Status RecordReplay::GoLive(bool in_exit)
{
	if (cfg_.before_live) {
		Status s = cfg_.before_live();
		if (!s.ok())
			return s;
	}
	src_ = nullptr;
	st_.went_live_at = pos_;
	// The writes replayed so far, in log order, before any of our own;
	// the frames the log did not report sent.
	Status s = GoLiveOutputs(*m_, &st_.net_resent);
	if (!s.ok())
		return s;
	SetOutputModes();
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
Status RecordReplay::StartLog()
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

uint32_t RecordReplay::state_id() const { return KVM_FT_DEV_ENGINE; }

void RecordReplay::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	w.Put(static_cast<uint8_t>(window_));
	w.Put(static_cast<uint8_t>(halted_));
	w.Put(pos_);
}

Status RecordReplay::Load(const uint8_t *data, size_t len)
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
