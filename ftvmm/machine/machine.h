// machine.h - a VM with its buses and devices wired as on a PC
// (Documentation/ftvmm.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hw/bus.h"
#include "hw/exit_port.h"
#include "hw/pic.h"
#include "hw/pit.h"
#include "hw/rtc.h"
#include "hw/stateful.h"
#include "hw/uart.h"
#include "output/console.h"
#include "virtio/blk.h"
#include "virtio/disk.h"
#include "virtio/net.h"
#include "virtio/net_link.h"
#include "vm/vm.h"

namespace kvmft::vmm {

struct MachineConfig {
	uint64_t mem_bytes = 64ULL << 20;
	bool dirty_log = false;
	int console_fd = 1;
	Pit::Clock clock;	// default: CLOCK_MONOTONIC
	Rtc::WallClock wall;	// default: time()
	std::string disk;	// virtio-blk on this file; none if empty
	std::string net;	// virtio-net on this tap; none if empty
	UniqueFd net_fd;	// or on this fd (one frame per read/write)
	VirtioNet::Mac mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	unsigned vcpus = 1;	// 1..kMaxVcpus
};

class Machine {
public:
	static Status Create(MachineConfig cfg, std::unique_ptr<Machine> *out);
	Vm &vm() { return *vm_; }
	Bus &pio() { return pio_; }
	Bus &mmio() { return mmio_; }
	Pic &pic() { return pic_; }
	Pit &pit() { return pit_; }
	ExitPort &exit_port() { return exit_; }
	Console &console() { return console_; }
	// virtio-blk, or nullptr when the machine has no disk.
	VirtioBlk *blk() { return blk_.get(); }
	// virtio-net, or nullptr when the machine has no network.
	VirtioNet *net() { return net_.get(); }
	// Devices whose state goes into checkpoints, in a fixed order.
	std::vector<Stateful *> devices()
	{
		std::vector<Stateful *> v{&pic_, &pit_, &uart_, &rtc_};
		if (blk_)
			v.push_back(blk_.get());
		if (net_)
			v.push_back(net_.get());
		return v;
	}
	uint64_t Now() const { return clock_(); }
	// SMP: serialises device emulation (bus dispatch, interrupt
	// delivery) between the vCPU threads.
	std::mutex &io_mu() { return io_mu_; }

private:
	explicit Machine(const MachineConfig &cfg);
	Pit::Clock clock_;
	std::mutex io_mu_;
	std::unique_ptr<Vm> vm_;
	Bus pio_{"pio"}, mmio_{"mmio"};
	Console console_;
	Pic pic_;
	Pit pit_;
	Uart uart_;
	Rtc rtc_;
	ExitPort exit_;
	std::unique_ptr<Disk> disk_;
	std::unique_ptr<VirtioBlk> blk_;
	std::unique_ptr<NetLink> link_;
	std::unique_ptr<VirtioNet> net_;
};

} // namespace kvmft::vmm
