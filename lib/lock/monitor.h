// monitor.h - watches other hosts' heartbeats with this host's own clock.
//
// A host is judged gone when its slot has held the same value for at
// least host_dead, as seen by a chain of reads of this host in which no
// two consecutive reads started more than max_gap apart. The chain rule
// makes a forward jump of our own clock (or our own suspension) restart
// the observation instead of letting it count as elapsed time.
//
// Thread safety: none; owned by one Lockspace.
#pragma once

#include <cstdint>
#include <vector>

#include "lock/format.h"
#include "lock/timing.h"

namespace kvmft::lock {

class Monitor {
public:
	Monitor(uint32_t hosts, const Timing &t) : t_(t), obs_(hosts + 1) {}

	// Record a read of host slot `id` that started at `start` and ended at
	// `end` (local clock) and returned `slot`.
	void Observe(uint32_t id, int64_t start, int64_t end, const HostSlot &slot)
	{
		Obs &o = obs_.at(id);
		if (!o.seen || !(o.slot == slot) || start - o.last_start > t_.max_gap)
			o.since = end;
		o.seen = true;
		o.slot = slot;
		o.last_start = start;
	}

	// The latest value read from slot id (state kFree if never read).
	const HostSlot &Latest(uint32_t id) const { return obs_.at(id).slot; }

	// True when the value in slot id has provably stopped changing for
	// host_dead: its owner's lease is over.
	bool Stale(uint32_t id) const
	{
		const Obs &o = obs_.at(id);
		return o.seen && o.last_start - o.since >= t_.host_dead;
	}

	// How long slot id has been seen unchanged (0 if never read).
	int64_t Unchanged(uint32_t id) const
	{
		const Obs &o = obs_.at(id);
		return o.seen && o.last_start > o.since ? o.last_start - o.since : 0;
	}

private:
	struct Obs {
		bool seen = false;
		HostSlot slot;
		int64_t since = 0;      // end of the first read of this value
		int64_t last_start = 0; // start of the latest read
	};
	Timing t_;
	std::vector<Obs> obs_;
};

} // namespace kvmft::lock
