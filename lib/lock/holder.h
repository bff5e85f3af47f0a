// holder.h - own one resource from a process that is busy with other work
// (ftvmm guarding the VM it runs).
//
// Open() takes the host id lease at once (it waits W, the delta-lease
// wait) and a background thread keeps it renewed from then on. The claim
// on the resource is taken only when asked: Acquire() at start for a
// primary, at go-live for a secondary, so failover waits only for the
// old owner's lease to lapse, not for a host id. Once the claim is owned
// a Fence (fence.h) calls on_lost the moment the lease is gone; on_lost
// must stop what the lease guards at once (ftvmm: _exit, so the VM dies
// with the process) and must not block on storage.
//
// Protocol between the two threads: every non-thread-safe Lockspace call
// (Renew, Acquire, Release*) runs under mu_. Acquire holds mu_ for the
// whole wait: Lockspace::Acquire renews the host lease itself meanwhile,
// so the renewal thread has nothing to do while it waits.
//
// Thread safety: Acquire and the destructor from one thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lock/disk.h"
#include "lock/fence.h"
#include "lock/lockspace.h"

namespace kvmft::lock {

class Holder {
public:
	// Open the lock area at `area` (file or block device) as host_id and
	// take the host id, waiting up to timeout_ns.
	static Status Open(const std::string &area, uint32_t host_id, const std::string &owner,
			   int64_t timeout_ns, std::unique_ptr<Holder> *out);
	// Own `resource`, waiting up to timeout_ns while a live host owns it
	// (ETIMEDOUT, naming the owner). After success on_lost is called,
	// once and from another thread, if the lease is ever lost.
	Status Acquire(const std::string &resource, int64_t timeout_ns, Fence::Handler on_lost);
	// Stop renewing; release the claim and the host id while still valid.
	~Holder();
	Holder(const Holder &) = delete;
	Holder &operator=(const Holder &) = delete;

	bool Valid() { return ls_->Valid(); }
	const Timing &timing() const { return ls_->timing(); }

private:
	Holder() = default;
	void Renewer();

	std::unique_ptr<FileDisk> disk_;
	SystemClock clock_;
	std::unique_ptr<Lockspace> ls_;
	std::unique_ptr<Fence> fence_;
	std::mutex mu_;
	std::condition_variable cv_;
	bool stop_ = false; // guarded by mu_
	std::thread thr_;
};

} // namespace kvmft::lock
