// clock.h - the one monotonic clock of kvm-ft's userspace (ns).
#pragma once

#include <time.h>

#include <cstdint>

namespace kvmft {

// CLOCK_MONOTONIC in ns.
inline uint64_t MonotonicNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

} // namespace kvmft
