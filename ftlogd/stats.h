// stats.h - the measures ftlogd reports per session: latency percentiles
// over a sliding window, moving averages, bandwidth.
// Thread safety: none; the owner locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvmft::logd {

// The last kWindow samples; percentiles computed on demand.
class Percentiles {
public:
	static constexpr size_t kWindow = 4096;
	void Add(uint64_t v);
	// p in [0, 100]; 0 if no sample yet.
	uint64_t Get(double p) const;
	uint64_t count() const { return count_; }

private:
	std::vector<uint64_t> ring_;
	size_t next_ = 0;
	uint64_t count_ = 0;
};

// Exponentially weighted moving average, weight 1/8 per sample.
class Ewma {
public:
	void Add(double v) { v_ = init_ ? v_ + (v - v_) / 8 : v, init_ = true; }
	double get() const { return v_; }

private:
	double v_ = 0;
	bool init_ = false;
};

// Bytes per second over the last completed window of at least 1 s
// (Tick() closes windows; a silent session reads 0).
class Bandwidth {
public:
	void Add(uint64_t bytes) { bytes_ += bytes; }
	void Tick(uint64_t now_ns);
	double bps() const { return bps_; }

private:
	uint64_t bytes_ = 0, start_ns_ = 0;
	double bps_ = 0;
};

} // namespace kvmft::logd
