// timing.h - the bounds the lock protocol derives from an area's Timeouts.
// The reasoning behind each is in Documentation/lock.md ("Timing").
#pragma once

#include <cstdint>

#include "lock/disk.h"
#include "lock/format.h"

namespace kvmft::lock {

// Two hosts' clocks may run at rates differing by up to kDriftPpm (far
// more than any real oscillator), and a holder needs up to the fence
// margin after its deadline to stop the VM it guards.
inline constexpr int64_t kDriftPpm = 20000; // 2 %

struct Timing {
	int64_t renew;      // R: heartbeat period
	int64_t io;         // T: longest I/O that still counts
	int64_t lease;      // L: holder validity from the start of a renewal
	int64_t fence;      // F: time a fenced holder may take to stop
	int64_t max_gap;    // G: longest gap between two monitoring reads
	int64_t host_dead;  // D: heartbeat unchanged this long => holder gone
	int64_t id_wait;    // W: delta-lease wait between write and re-read
	int64_t id_window;  // X: longest read-start to write-end in an acquire
};

// Stretch a duration measured by one clock so that it covers the same
// real time measured by another, in both directions of drift.
inline int64_t Stretch(int64_t d)
{
	int64_t f = 1000000 + kDriftPpm;
	return d * f / 1000000 * f / 1000000;
}

inline Timing TimingOf(const Timeouts &t)
{
	Timing x;
	x.renew = t.renew_ms * kMs;
	x.io = t.io_timeout_ms * kMs;
	x.lease = t.lease_ms * kMs;
	x.fence = x.io;
	// A gap longer than G restarts an observation (our clock jumped or we
	// stalled); a jump shorter than G goes unnoticed, so D absorbs one.
	x.max_gap = x.renew + x.io;
	x.host_dead = Stretch(x.lease + x.io) + x.fence + x.max_gap;
	x.id_window = 2 * x.io;
	x.id_wait = Stretch(x.id_window) + x.io / 4;
	return x;
}

} // namespace kvmft::lock
