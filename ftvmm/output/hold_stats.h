// hold_stats.h - the output rule's figures: how many outputs are held and
// how long each one was (the output rule, Documentation/ftvmm.md).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/clock.h"

namespace kvmft::vmm {

// Hold times: log-linear buckets (16 per power of two), so a percentile
// is within 1/16 of the true value, in fixed memory.
class HoldHistogram {
public:
	void Add(uint64_t ns);
	// p in [0, 100]: the upper bound of the bucket holding that rank,
	// at most the largest sample; 0 without samples.
	uint64_t Get(double p) const;
	uint64_t count() const { return count_; }
	uint64_t max() const { return max_; }

private:
	static constexpr int kSub = 16;
	static size_t Bucket(uint64_t ns);
	static uint64_t Upper(size_t b);
	std::array<uint64_t, 62 * kSub> n_{};
	uint64_t count_ = 0, max_ = 0;
};

// The output rule's figures. An output is one console byte.
struct OutputCounts {
	uint64_t held = 0;          // waiting for their ACK now
	uint64_t released = 0;      // released after their ACK, total
	uint64_t hold_ns_total = 0; // sum of the released ones' hold times
};
struct OutputStats : OutputCounts {
	uint64_t hold_ns_p50 = 0, hold_ns_p99 = 0, hold_ns_max = 0;
};

} // namespace kvmft::vmm
