// ring_sink.cc - FT log into a ring, waiting when it is full (ring_sink.h).
#include "ftlog/ring_sink.h"

#include <ctime>
#include <fmt/format.h>

#include "log/ring_io.h"

namespace kvmft::vmm {

Status RingSink::Append(void *rec, uint32_t len)
{
	if (len > v_.size / 2)
		return Status::Error(E2BIG, fmt::format("record of {} bytes does not fit a "
							"{}-byte log ring", len, v_.size));
	if (!RingFits(v_, len)) {
		stalls_++;
		uint64_t t0 = MonotonicNs();
		while (!RingFits(v_, len)) {
			if (MonotonicNs() - t0 > limit_ns_)
				return Status::Error(ETIMEDOUT, "log ring full: its consumer "
							       "stopped acknowledging");
			timespec ts{0, 20000};
			nanosleep(&ts, nullptr);
		}
	}
	if (!prod_.Write(rec, len))
		return Status::Error(ENOSPC, "log ring refused a record that fits");
	return Status::Ok();
}

uint64_t RingSink::tag() const
{
	return __atomic_load_n(&v_.prod->producer_pos, __ATOMIC_RELAXED);
}

uint64_t RingSink::Ack() const
{
	// Acquire: pairs with ftlogd's release store of ack_pos.
	return __atomic_load_n(&v_.ctl->ack_pos, __ATOMIC_ACQUIRE);
}

void RingSink::PublishOutputs(OutputSource src, const OutputCounts &c)
{
	std::lock_guard<std::mutex> g(out_mu_);
	out_[src] = c;
	RingOutputs sum;
	for (const OutputCounts &o : out_) {
		sum.held += o.held;
		sum.released += o.released;
		sum.hold_ns_total += o.hold_ns_total;
	}
	RingPublishOutputs(v_, sum);
}

} // namespace kvmft::vmm
