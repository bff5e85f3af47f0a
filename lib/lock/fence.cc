// fence.cc - the fencing thread (fence.h).
#include "lock/fence.h"

#include <time.h>

namespace kvmft::lock {

Fence::Fence(Lockspace *ls, Handler on_lost, int64_t slice_ns)
	: ls_(ls), on_lost_(std::move(on_lost)), slice_(slice_ns)
{
	thr_ = std::thread([this] { Run(); });
}

Fence::~Fence()
{
	stop_ = true;
	thr_.join();
}

void Fence::Run()
{
	struct timespec ts = {static_cast<time_t>(slice_ / 1000000000),
			      static_cast<long>(slice_ % 1000000000)};
	while (!stop_) {
		if (ls_->Lost()) {
			fired_ = true;
			on_lost_(ls_->LostReason());
			return;
		}
		nanosleep(&ts, nullptr);
	}
}

} // namespace kvmft::lock
