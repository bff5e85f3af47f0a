// machine.cc - PC wiring (machine.h).
#include "machine/machine.h"

namespace kvmft::vmm {

Machine::Machine(const MachineConfig &cfg)
	: clock_(cfg.clock ? cfg.clock : MonotonicNs),
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
