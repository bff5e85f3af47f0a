// ring_sink.h - the FT log into a kvm-ft ring (uapi/linux/kvm_ft.h) that
// ftlogd consumes: the VMM's output mode without kvm_ft.ko.
//
// Never drops a record: when the ring is full (the secondary lags and
// ftlogd holds unacknowledged records), Append waits — the primary is
// slowed down (Documentation/ftvmm.md, "Output rule"). Waiting longer than the stall limit is an error.
// tag() and Ack() are ring byte positions: an output tagged with tag()
// may be released once Ack() >= tag (Documentation/ftlogd.md).
// PublishOutputs() puts the output rule's figures in the ring's producer
// page, where ftlogd reads them for its session statistics: the sums over
// the sources that hold outputs (console bytes, network frames).
//
// Thread safety: the producer side of one ring, used by the vCPU thread;
// PublishOutputs from any thread (its own mutex).
#pragma once

#include <atomic>
#include <mutex>

#include "ftlog/sink.h"
#include "ring/ring.h"

namespace kvmft::vmm {

class RingSink : public LogSink {
public:
	RingSink(const RingView &v, int eventfd, uint64_t stall_limit_ns = 10000000000ULL)
		: v_(v), prod_(v, eventfd), limit_ns_(stall_limit_ns) {}
	Status Append(void *rec, uint32_t len) override;
	Status Flush() override { return Status::Ok(); }
	uint64_t tag() const override;
	// ctl->ack_pos as ftlogd published it.
	uint64_t Ack() const;
	// The counts of one source, as it holds or releases.
	void PublishOutputs(OutputSource src, const OutputCounts &c) override;
	uint64_t stalls() const { return stalls_.load(); }	// Appends that waited

private:
	RingView v_;
	RingProducer prod_;
	uint64_t limit_ns_;
	std::atomic<uint64_t> stalls_{0};
	std::mutex out_mu_; // guards out_
	OutputCounts out_[kSources];
};

} // namespace kvmft::vmm
