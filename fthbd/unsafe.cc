// unsafe.cc - the active's unsafe queue (unsafe.h).
#include "unsafe.h"

#include <unistd.h>

namespace kvmft::hbd {

int32_t UnsafeQueue::Update(Record r, const std::function<int32_t()> &op)
{
	uint64_t seq;
	{
		std::lock_guard<std::mutex> o(order_);
		r.status = op();
		r.has_status = true;
		std::lock_guard<std::mutex> g(mu_);
		seq = r.seq = ++last_seq_;
		if (queueing_) {
			std::string f;
			Encode(r, &f);
			bytes_ += f.size();
			q_.emplace_back(seq, std::move(f));
			if (bytes_ > max_bytes_) {
				queueing_ = synced_ = false;
				q_.clear();
				bytes_ = 0;
				cv_.notify_all();
			}
		}
	}
	uint64_t one = 1;
	if (write(wake_fd_, &one, sizeof one) < 0) {
		// The eventfd only wakes the link thread early; it polls anyway.
	}
	if (mode_ == Mode::kSync || r.op == Op::kFsync) {
		std::unique_lock<std::mutex> g(mu_);
		cv_.wait(g, [&] { return !synced_ || acked_ >= seq; });
	}
	return r.status;
}

bool UnsafeQueue::Resume(uint64_t passive_last)
{
	std::lock_guard<std::mutex> g(mu_);
	while (!q_.empty() && q_.front().first <= passive_last) {
		bytes_ -= q_.front().second.size();
		q_.pop_front();
	}
	bool covered = passive_last == last_seq_ ||
		       (passive_last < last_seq_ && !q_.empty() && q_.front().first == passive_last + 1);
	synced_ = queueing_ && covered;
	if (!synced_) {
		queueing_ = false;
		q_.clear();
		bytes_ = 0;
	}
	acked_ = passive_last;
	next_send_ = passive_last + 1;
	cv_.notify_all();
	return synced_;
}

void UnsafeQueue::Take(std::string *out, size_t max)
{
	std::lock_guard<std::mutex> g(mu_);
	if (q_.empty() || next_send_ > q_.back().first)
		return;
	size_t i = next_send_ - q_.front().first;
	for (; i < q_.size() && out->size() < max; i++) {
		*out += q_[i].second;
		next_send_ = q_[i].first + 1;
	}
}

void UnsafeQueue::Acked(uint64_t seq)
{
	std::lock_guard<std::mutex> g(mu_);
	if (seq <= acked_)
		return;
	acked_ = seq;
	while (!q_.empty() && q_.front().first <= seq) {
		bytes_ -= q_.front().second.size();
		q_.pop_front();
	}
	cv_.notify_all();
}

void UnsafeQueue::Degrade()
{
	std::lock_guard<std::mutex> g(mu_);
	synced_ = queueing_ = false;
	q_.clear();
	bytes_ = 0;
	cv_.notify_all();
}

void UnsafeQueue::StartAfter(uint64_t seq)
{
	std::lock_guard<std::mutex> g(mu_);
	last_seq_ = acked_ = seq;
	next_send_ = seq + 1;
	synced_ = queueing_ = false;
}

UnsafeStats UnsafeQueue::Stats()
{
	std::lock_guard<std::mutex> g(mu_);
	return {last_seq_, acked_, q_.size(), bytes_, synced_, queueing_};
}

} // namespace kvmft::hbd
