// intercept.h - the interception layer: a FUSE passthrough filesystem
// mounted over the protected directory on the active. Reads go straight
// to the directory underneath (opened before the mount hides it); every
// update runs there too and becomes a record of the unsafe queue, with
// its result as completion status (unsafe.h decides when the
// application's call returns). Not recorded: times (utimens) and
// ownership, which the application's recovery does not depend on.
//
// Thread safety: Start and Stop from one thread; FUSE's worker threads
// call into the UnsafeQueue.
#pragma once

#include <string>
#include <thread>

#include "base/status.h"
#include "base/unique_fd.h"
#include "unsafe.h"

struct fuse;

namespace kvmft::hbd {

class Intercept {
public:
	~Intercept() { Stop(); }
	kvmft::Status Start(const std::string &dir, UnsafeQueue *q);
	void Stop();
	bool mounted() const { return fuse_ != nullptr; }

	// Used by the FUSE callbacks.
	int dirfd() const { return dirfd_.get(); }
	UnsafeQueue *queue() const { return q_; }

private:
	kvmft::UniqueFd dirfd_;
	UnsafeQueue *q_ = nullptr;
	struct fuse *fuse_ = nullptr;
	std::thread loop_;
};

} // namespace kvmft::hbd
