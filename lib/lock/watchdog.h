// watchdog.h - kill what a lease guards even if its holder is frozen.
//
// The Fence thread (fence.h) covers a holder stuck in I/O, but a holder
// process that is stopped (SIGSTOP, debugger, swap storm) runs no thread
// at all. A Watchdog is a small separate process: the holder pushes its
// lease deadline into a shared page after every renewal; when the clock
// (CLOCK_BOOTTIME) passes the deadline, the watchdog SIGKILLs the target
// process group (the VM) and exits. It also fires if the holder dies, so
// a crashed ftlogd cannot leave its VM running past the lease. (A frozen
// *host* freezes the VM too; sanlock adds a hardware watchdog for hosts
// that come back, which is out of scope here.)
//
// Thread safety: Arm/Disarm from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "base/status.h"

namespace kvmft::lock {

class Watchdog {
public:
	// Fork the watchdog for process group `pgid`, armed at `deadline`
	// (CLOCK_BOOTTIME ns). It checks every slice_ns.
	static Status Start(pid_t pgid, int64_t deadline, int64_t slice_ns,
			    std::unique_ptr<Watchdog> *out);
	~Watchdog(); // disarms and reaps the watchdog process
	Watchdog(const Watchdog &) = delete;
	Watchdog &operator=(const Watchdog &) = delete;

	// Move the deadline (only ever later while the lease is renewed).
	void Arm(int64_t deadline);
	// Stop watching: the lease was released cleanly.
	void Disarm();
	bool Fired() const;
	pid_t pid() const { return pid_; }

private:
	struct Shared {
		std::atomic<int64_t> deadline;
		std::atomic<int> stop;
		std::atomic<int> fired;
	};
	Watchdog(Shared *sh, pid_t pid) : sh_(sh), pid_(pid) {}
	Shared *sh_;
	pid_t pid_;
};

} // namespace kvmft::lock
