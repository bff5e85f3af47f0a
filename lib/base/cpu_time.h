// cpu_time.h - CPU time this process has used (the benchmarks report it).
#pragma once

#include <sys/resource.h>

namespace kvmft {

// User + system CPU seconds of this process so far.
inline double CpuSeconds()
{
	rusage ru{};
	getrusage(RUSAGE_SELF, &ru);
	return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

} // namespace kvmft
