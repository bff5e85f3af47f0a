// machine.cc - PC wiring and console (machine.h).
#include "machine.h"

#include <unistd.h>

#include <ctime>

namespace kvmft::vmm {

uint64_t MonotonicNowNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + ts.tv_nsec;
}

void Console::Put(uint8_t c)
{
	if (hold_) {
		held_.emplace_back(tag_, c);
		return;
	}
	out_.push_back(static_cast<char>(c));
	if (c == '\n' || out_.size() >= 4096)
		Flush();
}

void Console::Release(uint64_t ack)
{
	while (!held_.empty() && held_.front().first <= ack) {
		out_.push_back(static_cast<char>(held_.front().second));
		held_.pop_front();
	}
	Flush();
}

void Console::Flush()
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

Status Machine::Create(const MachineConfig &cfg, std::unique_ptr<Machine> *out)
{
	auto m = std::unique_ptr<Machine>(new Machine(cfg));
	Status s = Vm::Create(cfg.mem_bytes, cfg.dirty_log, &m->vm_);
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
	if (!cfg.disk.empty()) {
		if (!(s = Disk::Open(cfg.disk, &m->disk_)).ok())
			return s;
		Vm *vm = m->vm_.get();
		Pic *pic = &m->pic_;
		GuestMemory mem{vm->mem(), vm->mem_bytes(),
				[vm](uint64_t gpa, uint64_t len) { vm->MarkDirty(gpa, len); }};
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
