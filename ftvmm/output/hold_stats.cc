// hold_stats.cc - hold time histogram (hold_stats.h).
#include "output/hold_stats.h"

#include <algorithm>
#include <cmath>

namespace kvmft::vmm {

size_t HoldHistogram::Bucket(uint64_t ns)
{
	if (ns < kSub)
		return ns;
	int e = 63 - __builtin_clzll(ns); // >= 4
	uint64_t sub = (ns >> (e - 4)) & (kSub - 1);
	return static_cast<size_t>(e - 3) * kSub + sub;
}

uint64_t HoldHistogram::Upper(size_t b)
{
	if (b < kSub)
		return b;
	int e = static_cast<int>(b / kSub) + 3;
	uint64_t lo = (kSub + b % kSub) << (e - 4);
	return lo + ((1ULL << (e - 4)) - 1);
}

void HoldHistogram::Add(uint64_t ns)
{
	n_[Bucket(ns)]++;
	count_++;
	max_ = std::max(max_, ns);
}

uint64_t HoldHistogram::Get(double p) const
{
	if (!count_)
		return 0;
	uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100 * static_cast<double>(count_)));
	rank = std::clamp<uint64_t>(rank, 1, count_);
	uint64_t seen = 0;
	for (size_t b = 0; b < n_.size(); b++) {
		seen += n_[b];
		if (seen >= rank)
			return std::min(Upper(b), max_);
	}
	return max_;
}

} // namespace kvmft::vmm
