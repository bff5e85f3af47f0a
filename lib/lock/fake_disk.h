// fake_disk.h - in-memory Disk and a hand-driven Clock for unit tests.
//
// MemDisk holds the sectors in memory and can inject faults: fail the
// next N operations (a failed write may still land: `lose` decides),
// advance a ManualClock during an operation (a slow I/O), or run a hook
// before an operation (to let another host act in the middle of a
// protocol step). Several Lockspaces share one MemDisk the way hosts
// share a LUN. For concurrent interleavings see sim.h.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include "lock/disk.h"
#include "lock/format.h"

namespace kvmft::lock {

// Thread-safe enough for one driving thread plus readers (Fence).
class ManualClock : public Clock {
public:
	explicit ManualClock(int64_t start = 1000 * kMs) : now_(start) {}
	int64_t Now() override { return now_; }
	// Sleeping is instantaneous: time moves to t, in steps of at most
	// `step` (0: one step), running on_sleep after each (other hosts act).
	void SleepUntil(int64_t t) override
	{
		do {
			int64_t n = step ? std::min<int64_t>(t, now_ + step) : t;
			if (n > now_)
				now_ = n;
			if (on_sleep)
				on_sleep();
		} while (now_ < t);
	}
	int64_t step = 0;
	void Advance(int64_t d) { now_ += d; }
	void Set(int64_t t) { now_ = t; } // may go backwards, for tests
	std::function<void()> on_sleep;

private:
	std::atomic<int64_t> now_; // read by Fence threads
};

class MemDisk : public Disk {
public:
	explicit MemDisk(uint64_t sectors) : data_(sectors * kSectorSize, 0) {}

	Status Read(uint64_t lba, uint32_t count, void *buf) override
	{
		Status st = Begin(false, lba, count);
		if (st.ok())
			std::memcpy(buf, &data_[lba * kSectorSize], size_t(count) * kSectorSize);
		return st;
	}
	Status Write(uint64_t lba, uint32_t count, const void *buf) override
	{
		Status st = Begin(true, lba, count);
		if (st.ok() || land_failed_writes)
			std::memcpy(&data_[lba * kSectorSize], buf, size_t(count) * kSectorSize);
		return st;
	}
	uint64_t Sectors() const override { return data_.size() / kSectorSize; }
	std::string Name() const override { return "memdisk"; }

	// Fault injection.
	int fail_next = 0;               // fail this many operations
	bool land_failed_writes = false; // a failed write still reaches the medium
	ManualClock *clock = nullptr;    // advanced by delay per operation
	int64_t delay = 0;
	std::function<void(bool write, uint64_t lba)> before; // runs first
	uint64_t reads = 0, writes = 0;
	uint8_t *sector(uint64_t lba) { return &data_[lba * kSectorSize]; }

private:
	Status Begin(bool write, uint64_t lba, uint32_t count)
	{
		if (before)
			before(write, lba);
		(write ? writes : reads)++;
		if (clock)
			clock->Advance(delay);
		if (lba + count > Sectors())
			return Status::Error(ERANGE, "memdisk: beyond end");
		if (fail_next > 0) {
			fail_next--;
			return Status::Error(EIO, std::string("memdisk: injected ") +
							  (write ? "write" : "read") + " error");
		}
		return Status::Ok();
	}
	std::vector<uint8_t> data_;
};

} // namespace kvmft::lock
