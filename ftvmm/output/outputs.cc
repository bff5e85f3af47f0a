// outputs.cc - holding, releasing and draining a VM's outputs (outputs.h).
#include "output/outputs.h"

#include <linux/kvm_ft_vmm.h>
#include <time.h>

#include <fmt/format.h>

#include "ftlog/record.h"

namespace kvmft::vmm {

void Outputs::SetAck(std::function<uint64_t()> ack, LogSink *sink)
{
	ack_ = std::move(ack);
	m_->console().set_hold(static_cast<bool>(ack_));
	auto publish = [this, sink](LogSink::OutputSource src)
		-> std::function<void(const OutputCounts &)> {
		if (!ack_ || !sink)
			return nullptr;
		return [sink, src](const OutputCounts &c) { sink->PublishOutputs(src, c); };
	};
	m_->console().set_publish(publish(LogSink::kConsole));
	if (m_->net())
		m_->net()->link()->set_publish(publish(LogSink::kNet));
	if (m_->blk())
		m_->blk()->disk()->set_publish(publish(LogSink::kDisk));
}

Status Outputs::Release()
{
	if (!ack_)
		return Status::Ok();
	const uint64_t a = ack_();
	m_->console().Release(a);
	if (m_->net())
		m_->net()->link()->Release(a);
	if (!m_->blk())
		return Status::Ok();
	std::lock_guard<std::mutex> g(m_->io_mu());
	return m_->blk()->disk()->Release(a).Wrap("release disk writes");
}

size_t Outputs::Held() const
{
	size_t n = m_->console().held();
	if (m_->blk())
		n += m_->blk()->disk()->overlay().size();
	if (m_->net() && m_->net()->link()->mode() == NetLink::kHold)
		n += m_->net()->link()->held();
	return n;
}

Status Outputs::Drain(uint64_t timeout_ns)
{
	if (!ack_)
		return Status::Ok();
	const uint64_t t0 = MonotonicNs();
	for (;;) {
		Status s = Release();
		if (!s.ok())
			return s;
		if (!Held())
			return Status::Ok();
		if (MonotonicNs() - t0 > timeout_ns)
			return Status::Error(ETIMEDOUT, fmt::format(
				"{} console bytes, {} disk writes and {} network frames still "
				"held: the log was not acknowledged", m_->console().held(),
				m_->blk() ? m_->blk()->disk()->overlay().size() : 0,
				m_->net() ? m_->net()->link()->held() : 0));
		timespec ts{0, 100000};
		nanosleep(&ts, nullptr);
	}
}

Status LogSent(LogSink *sink, uint64_t pos, uint64_t sent, uint64_t *logged, bool *appended)
{
	if (appended)
		*appended = false;
	if (sent <= *logged)
		return Status::Ok();
	*logged = sent;
	kvm_ft_vmm_net_sent r;
	InitRec(&r.hdr, KVM_FT_REC_VMM_NET_SENT, sizeof(r), pos);
	r.sent_pos = sent;
	if (appended)
		*appended = true;
	return sink->Append(&r, sizeof(r));
}

Status GoLiveOutputs(Machine &m, uint64_t *resent)
{
	*resent = 0;
	if (Disk *d = m.blk() ? m.blk()->disk() : nullptr) {
		// A private copy applying epochs (kEpochsPrivate) has them
		// already; a replayed private copy keeps none.
		const Disk::Mode mode = d->mode();
		if (mode == Disk::kReplay || mode == Disk::kReplayPrivate || mode == Disk::kEpochs) {
			Status s = d->ApplyAll();
			if (!s.ok())
				return s.Wrap("go-live: write the disk writes the log holds");
		}
	}
	if (VirtioNet *net = m.net()) {
		NetLink *l = net->link();
		if (l->mode() == NetLink::kReplay || l->mode() == NetLink::kEpochs) {
			l->Discard();
			*resent = l->SendReplayed();
			l->Announce(net->mac().data());
		}
	}
	return Status::Ok();
}

} // namespace kvmft::vmm
