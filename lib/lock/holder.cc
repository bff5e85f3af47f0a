// holder.cc - host id renewed in the background, claim taken on demand.
#include "lock/holder.h"

#include <sys/random.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

namespace kvmft::lock {

Status Holder::Open(const std::string &area, uint32_t host_id, const std::string &owner,
		    int64_t timeout_ns, std::unique_ptr<Holder> *out)
{
	std::unique_ptr<Holder> h(new Holder());
	Status st = FileDisk::Open(area, 0, &h->disk_);
	if (!st.ok())
		return st;
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed ^= uint64_t(time(nullptr)) ^ uint64_t(getpid());
	st = Lockspace::Open(h->disk_.get(), &h->clock_, host_id, owner, seed, &h->ls_);
	if (!st.ok())
		return st;
	st = h->ls_->AcquireHostId(h->clock_.Now() + timeout_ns);
	if (!st.ok())
		return st;
	Holder *p = h.get();
	h->thr_ = std::thread([p] { p->Renewer(); });
	*out = std::move(h);
	return Status::Ok();
}

// Renew every R. A failed renewal is retried at the next turn; a lost
// lease ends the thread (the fence, if armed, reports it).
void Holder::Renewer()
{
	const auto period = std::chrono::nanoseconds(ls_->timing().renew);
	std::unique_lock<std::mutex> g(mu_);
	while (!stop_) {
		auto due = std::chrono::steady_clock::now() + period;
		if (ls_->Renew().err() == ENOLCK)
			break;
		cv_.wait_until(g, due, [this] { return stop_; });
	}
}

Status Holder::Acquire(const std::string &resource, int64_t timeout_ns, Fence::Handler on_lost)
{
	std::lock_guard<std::mutex> g(mu_);
	Status st = ls_->Acquire(resource, clock_.Now() + timeout_ns);
	if (!st.ok())
		return st;
	if (!ls_->Valid())
		return Status::Error(ENOLCK, resource + ": " + ls_->LostReason());
	fence_ = std::make_unique<Fence>(ls_.get(), std::move(on_lost));
	return Status::Ok();
}

Holder::~Holder()
{
	fence_.reset(); // no on_lost from here on
	{
		std::lock_guard<std::mutex> g(mu_);
		stop_ = true;
	}
	cv_.notify_all();
	if (thr_.joinable())
		thr_.join();
	if (ls_ && ls_->Valid())
		ls_->ReleaseHostId();
}

} // namespace kvmft::lock
