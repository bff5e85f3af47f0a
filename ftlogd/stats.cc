// stats.cc - percentiles, moving averages, bandwidth.
#include "stats.h"

#include <algorithm>
#include <cmath>

namespace kvmft::logd {

void Percentiles::Add(uint64_t v)
{
	if (ring_.size() < kWindow)
		ring_.push_back(v);
	else
		ring_[next_] = v;
	next_ = (next_ + 1) % kWindow;
	count_++;
}

uint64_t Percentiles::Get(double p) const
{
	if (ring_.empty())
		return 0;
	std::vector<uint64_t> s = ring_;
	size_t k = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(s.size())));
	k = std::clamp<size_t>(k, 1, s.size()) - 1;
	std::nth_element(s.begin(), s.begin() + static_cast<ptrdiff_t>(k), s.end());
	return s[k];
}

void Bandwidth::Tick(uint64_t now)
{
	if (!start_ns_) {
		start_ns_ = now;
		return;
	}
	uint64_t span = now - start_ns_;
	if (span < 1000000000ull)
		return;
	bps_ = static_cast<double>(bytes_) * 1e9 / static_cast<double>(span);
	bytes_ = 0;
	start_ns_ = now;
}

} // namespace kvmft::logd
