// output_release.h - release held outputs the moment ftlogd publishes an
// ACK (output rule, Documentation/ftvmm.md), not at the vCPU's next exit.
//
// ftlogd stores ctl->ack_pos (release) and then writes 1 to the ACK
// eventfd it gave the VMM at registration. The releaser thread sleeps in
// poll() on that eventfd, reads it (emptying the counter), loads the ACK
// position (acquire) and releases what it covers. An ACK that arrives
// between the read and the load is seen by that load or wakes the next
// poll: none is missed. The vCPU thread may release too (at exits, at
// the end of the run); Console serialises both.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "base/unique_fd.h"
#include "machine/machine.h"

namespace kvmft::vmm {

class OutputReleaser {
public:
	// ack: the published ACK position; ack_fd: ftlogd's ACK eventfd;
	// net: the VM's network link, if any (its held frames too).
	OutputReleaser(Console *console, std::function<uint64_t()> ack, UniqueFd ack_fd,
		       NetLink *net = nullptr);
	~OutputReleaser(); // stops and joins the thread
	OutputReleaser(const OutputReleaser &) = delete;
	OutputReleaser &operator=(const OutputReleaser &) = delete;
	uint64_t wakeups() const { return wakeups_; }

private:
	void Run();
	Console *console_;
	NetLink *net_;
	std::function<uint64_t()> ack_;
	UniqueFd ack_fd_, stop_fd_;
	std::atomic<uint64_t> wakeups_{0};
	std::thread thr_;
};

} // namespace kvmft::vmm
