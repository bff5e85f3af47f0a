// machine.h - a VM with its buses and devices wired as on a PC
// (Documentation/ftvmm.md), and the console that carries UART output.
//
// Console output can be held (output rule, DESIGN.md): each byte is tagged
// with the log position current when the guest wrote it and released
// only once Release() is given an ACK covering that tag.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "bus.h"
#include "devices.h"
#include "disk.h"
#include "virtio_blk.h"
#include "vm.h"

namespace kvmft::vmm {

class Console {
public:
	explicit Console(int fd) : fd_(fd) {}
	~Console() { Flush(); }
	void set_hold(bool hold) { hold_ = hold; }
	void set_tag(uint64_t tag) { tag_ = tag; }
	void Put(uint8_t c);
	// Release held bytes tagged <= ack.
	void Release(uint64_t ack);
	void Flush();
	size_t held() const { return held_.size(); }
	uint64_t written() const { return written_; }

private:
	int fd_;
	bool hold_ = false;
	uint64_t tag_ = 0;
	std::deque<std::pair<uint64_t, uint8_t>> held_;
	std::string out_;
	uint64_t written_ = 0;
};

struct MachineConfig {
	uint64_t mem_bytes = 64ULL << 20;
	bool dirty_log = false;
	int console_fd = 1;
	Pit::Clock clock;	// default: CLOCK_MONOTONIC
	Rtc::WallClock wall;	// default: time()
	std::string disk;	// virtio-blk on this file; none if empty
};

class Machine {
public:
	static Status Create(const MachineConfig &cfg, std::unique_ptr<Machine> *out);
	Vm &vm() { return *vm_; }
	Bus &pio() { return pio_; }
	Bus &mmio() { return mmio_; }
	Pic &pic() { return pic_; }
	Pit &pit() { return pit_; }
	ExitPort &exit_port() { return exit_; }
	Console &console() { return console_; }
	// virtio-blk, or nullptr when the machine has no disk.
	VirtioBlk *blk() { return blk_.get(); }
	// Devices whose state goes into checkpoints, in a fixed order.
	std::vector<Stateful *> devices()
	{
		std::vector<Stateful *> v{&pic_, &pit_, &uart_, &rtc_};
		if (blk_)
			v.push_back(blk_.get());
		return v;
	}
	uint64_t Now() const { return clock_(); }

private:
	explicit Machine(const MachineConfig &cfg);
	Pit::Clock clock_;
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
};

uint64_t MonotonicNowNs();

} // namespace kvmft::vmm
