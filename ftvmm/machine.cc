// machine.cc - PC wiring and console (machine.h).
#include "machine.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>

namespace kvmft::vmm {

uint64_t MonotonicNowNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
}

size_t HoldHistogram::Bucket(uint64_t ns)
{
	if (ns < kSub)
		return ns;
	int e = 63 - __builtin_clzll(ns); // >= 4
	uint64_t sub = (ns >> (e - 4)) & (kSub - 1);
	return static_cast<size_t>(e - 3) * kSub + sub;
}

uint64_t HoldHistogram::Upper(size_t b)
{
	if (b < kSub)
		return b;
	int e = static_cast<int>(b / kSub) + 3;
	uint64_t lo = (kSub + b % kSub) << (e - 4);
	return lo + ((1ULL << (e - 4)) - 1);
}

void HoldHistogram::Add(uint64_t ns)
{
	n_[Bucket(ns)]++;
	count_++;
	max_ = std::max(max_, ns);
}

uint64_t HoldHistogram::Get(double p) const
{
	if (!count_)
		return 0;
	uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100 * static_cast<double>(count_)));
	rank = std::clamp<uint64_t>(rank, 1, count_);
	uint64_t seen = 0;
	for (size_t b = 0; b < n_.size(); b++) {
		seen += n_[b];
		if (seen >= rank)
			return std::min(Upper(b), max_);
	}
	return max_;
}

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
		held_.push_back({tag_, MonotonicNowNs(), c});
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
	uint64_t now = MonotonicNowNs();
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

Machine::Machine(const MachineConfig &cfg)
	: clock_(cfg.clock ? cfg.clock : MonotonicNowNs),
	  console_(cfg.console_fd),
	  pit_(clock_),
	  uart_([this](uint8_t c) { console_.Put(c); }),
	  rtc_(cfg.wall ? cfg.wall : [] { return time(nullptr); })
{
}

Status Machine::Create(MachineConfig cfg, std::unique_ptr<Machine> *out)
{
	auto m = std::unique_ptr<Machine>(new Machine(cfg));
	Status s = Vm::Create(cfg.mem_bytes, cfg.dirty_log, &m->vm_, cfg.vcpus);
	if (!s.ok())
		return s;
	struct {
		BusDevice *dev;
		uint64_t base, len;
	} map[] = {
		{m->pic_.master(), 0x20, 2}, {m->pic_.slave(), 0xa0, 2},
		{&m->pit_, 0x40, 4},	     {&m->rtc_, 0x70, 2},
		{&m->uart_, 0x3f8, 8},	     {&m->exit_, 0x501, 1},
	};
	for (auto &e : map) {
		s = m->pio_.Insert(e.dev, e.base, e.len);
		if (!s.ok())
			return s;
	}
	Vm *vm = m->vm_.get();
	Pic *pic = &m->pic_;
	GuestMemory mem{vm->mem(), vm->mem_bytes(),
			[vm](uint64_t gpa, uint64_t len) { vm->MarkDirty(gpa, len); }};
	if (!cfg.net.empty() || cfg.net_fd.valid()) {
		s = cfg.net_fd.valid() ? NetLink::FromFd(std::move(cfg.net_fd), "fd", &m->link_)
				       : NetLink::OpenTap(cfg.net, &m->link_);
		if (!s.ok())
			return s;
		m->net_ = std::make_unique<VirtioNet>(mem, m->link_.get(), cfg.mac,
						      [pic] { pic->Raise(VirtioNet::kIrq); });
		s = m->mmio_.Insert(m->net_.get(), VirtioNet::kBase, VirtioNet::kSize);
		if (!s.ok())
			return s;
	}
	if (!cfg.disk.empty()) {
		if (!(s = Disk::Open(cfg.disk, &m->disk_)).ok())
			return s;
		m->blk_ = std::make_unique<VirtioBlk>(std::move(mem), m->disk_.get(),
						      [pic] { pic->Raise(VirtioBlk::kIrq); });
		s = m->mmio_.Insert(m->blk_.get(), VirtioBlk::kBase, VirtioBlk::kSize);
		if (!s.ok())
			return s;
	}
	*out = std::move(m);
	return Status::Ok();
}

} // namespace kvmft::vmm
