// fence.h - self-fencing: tell the caller the moment its lease is gone.
//
// A Fence runs one thread that does no I/O. It sleeps until the holder's
// deadline and, if the lease was not extended by then (or was marked
// lost), calls on_lost once, from that thread. Because it never touches
// the disk, a holder whose renewal is stuck in I/O (storage cut, hung
// device) is still fenced on time: on_lost must halt what the lease
// guards (kill the VM, exit the process) without blocking on storage.
// A stopped process (SIGSTOP, a frozen host) runs nothing, this thread
// included; it cannot act either, and on resume the first thing this
// thread does is fire. Others take over only D > L + F after the last
// renewal, so on_lost has F (fence margin) to complete.
//
// Thread safety: construct and destroy from one thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "lock/lockspace.h"

namespace kvmft::lock {

class Fence {
public:
	using Handler = std::function<void(const std::string &reason)>;
	// Slice: how often the thread re-checks; the fence fires at most one
	// slice after the deadline (slice << fence margin F).
	Fence(Lockspace *ls, Handler on_lost, int64_t slice_ns = 5 * kMs);
	~Fence(); // stops the thread; on_lost is not called afterwards
	Fence(const Fence &) = delete;
	Fence &operator=(const Fence &) = delete;
	bool Fired() const { return fired_; }

private:
	void Run();
	Lockspace *ls_;
	Handler on_lost_;
	int64_t slice_;
	std::atomic<bool> stop_{false};
	std::atomic<bool> fired_{false};
	std::thread thr_;
};

} // namespace kvmft::lock
