// sink.h - where a recorder puts records: a file (LogWriter, file.h), a
// memfd ring (RingSink) or kvm_ft.ko's ring (KernelRingSink). The sink
// assigns hdr.seq; the caller fills every other header field (InitRec,
// record.h).
#pragma once

#include <cstdint>

#include "base/status.h"
#include "output/hold_stats.h"

namespace kvmft::vmm {

class LogSink {
public:
	virtual ~LogSink() = default;
	// rec: len bytes starting with a kvm_ft_rec_hdr whose len == len.
	virtual Status Append(void *rec, uint32_t len) = 0;
	virtual Status Flush() = 0;
	// Log position after everything appended so far, in the unit ACKs
	// use: records for a file, ring bytes (producer_pos) for a ring.
	virtual uint64_t tag() const = 0;
	// The output rule's figures of one source of outputs, each time it
	// holds or releases one: a sink that ftlogd reads publishes them
	// (RingSink); others ignore them. Called from any thread.
	enum OutputSource { kConsole, kNet, kDisk, kSources };
	virtual void PublishOutputs(OutputSource, const OutputCounts &) {}
};

} // namespace kvmft::vmm
