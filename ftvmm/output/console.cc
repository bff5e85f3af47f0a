// console.cc - the console and its held bytes (console.h).
#include "output/console.h"

#include <unistd.h>

#include <algorithm>

namespace kvmft::vmm {

size_t Console::held() const
{
	std::lock_guard<std::mutex> g(mu_);
	return held_.size();
}

uint64_t Console::written() const
{
	std::lock_guard<std::mutex> g(mu_);
	return written_;
}

uint64_t Console::produced() const
{
	std::lock_guard<std::mutex> g(mu_);
	return produced_;
}

void Console::Retag(uint64_t from, uint64_t to)
{
	std::lock_guard<std::mutex> g(mu_);
	for (auto it = held_.rbegin(); it != held_.rend() && it->tag == from; ++it)
		it->tag = to;
}

void Console::set_capture(bool on)
{
	std::lock_guard<std::mutex> g(mu_);
	capture_ = on;
	captured_.clear();
}

std::string Console::TakeCaptured()
{
	std::lock_guard<std::mutex> g(mu_);
	std::string s;
	s.swap(captured_);
	return s;
}

void Console::Put(uint8_t c)
{
	std::lock_guard<std::mutex> g(mu_);
	produced_++;
	if (capture_)
		captured_.push_back(static_cast<char>(c));
	if (hold_) {
		held_.push_back({tag_, MonotonicNs(), c});
		if (publish_)
			publish_(counts());
		return;
	}
	out_.push_back(static_cast<char>(c));
	if (c == '\n' || out_.size() >= 4096)
		FlushLocked();
}

void Console::Release(uint64_t ack)
{
	std::lock_guard<std::mutex> g(mu_);
	if (held_.empty() || held_.front().tag > ack) {
		FlushLocked();
		return;
	}
	uint64_t now = MonotonicNs();
	while (!held_.empty() && held_.front().tag <= ack) {
		const Held &h = held_.front();
		uint64_t ns = now > h.at_ns ? now - h.at_ns : 0;
		hist_.Add(ns);
		hold_ns_total_ += ns;
		released_++;
		out_.push_back(static_cast<char>(h.c));
		held_.pop_front();
	}
	if (publish_)
		publish_(counts());
	FlushLocked();
}

OutputStats Console::stats() const
{
	std::lock_guard<std::mutex> g(mu_);
	OutputStats s;
	static_cast<OutputCounts &>(s) = counts();
	s.hold_ns_p50 = hist_.Get(50);
	s.hold_ns_p99 = hist_.Get(99);
	s.hold_ns_max = hist_.max();
	return s;
}

void Console::Flush()
{
	std::lock_guard<std::mutex> g(mu_);
	FlushLocked();
}

void Console::FlushLocked()
{
	size_t off = 0;
	while (off < out_.size()) {
		ssize_t r = ::write(fd_, out_.data() + off, out_.size() - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; // console gone: output is lost, the VM runs on
		off += r;
	}
	written_ += off;
	out_.clear();
}

} // namespace kvmft::vmm
