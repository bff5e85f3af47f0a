// machine.h - a VM with its buses and devices wired as on a PC
// (Documentation/ftvmm.md), and the console that carries UART output.
//
// Console output can be held (output rule, DESIGN.md): each byte is tagged
// with the log position current when the guest wrote it and released
// only once Release() is given an ACK covering that tag. One byte is one
// output: the console counts the outputs held and released and measures
// each one's hold time (CLOCK_MONOTONIC, from the guest's write to the
// release).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bus.h"
#include "devices.h"
#include "disk.h"
#include "hold_stats.h"
#include "net_link.h"
#include "virtio_blk.h"
#include "virtio_net.h"
#include "vm.h"

namespace kvmft::vmm {

class Console {
public:
	explicit Console(int fd) : fd_(fd) {}
	~Console() { Flush(); }
	void set_hold(bool hold) { hold_ = hold; }
	void set_tag(uint64_t tag) { tag_ = tag; }
	// Called with the new counts whenever an output is held or released
	// (ftvmm publishes them in its log ring's producer page).
	void set_publish(std::function<void(const OutputCounts &)> fn) { publish_ = std::move(fn); }
	// Thread safety: Put, Release, Flush, held, written and stats may be
	// called from the vCPU thread and the output releaser at once (one
	// mutex); the set_* calls only before the VM runs.
	void Put(uint8_t c);
	// Release held bytes tagged <= ack.
	void Release(uint64_t ack);
	// Held bytes tagged `from` get tag `to` (SMP epochs: bytes are put
	// with kEpochPending and tagged once their epoch's end is logged).
	void Retag(uint64_t from, uint64_t to);
	// Bytes the guest wrote (Put), held or not.
	uint64_t produced() const;
	// SMP record: every byte Put is also kept until TakeCaptured(), which
	// returns the bytes since the last call (an epoch's output, logged in
	// the epoch so a secondary that applies it prints it too).
	void set_capture(bool on);
	std::string TakeCaptured();
	void Flush();
	size_t held() const;
	uint64_t written() const;
	// Counts and hold time percentiles of the held outputs so far.
	OutputStats stats() const;

private:
	struct Held {
		uint64_t tag;
		uint64_t at_ns; // when the guest wrote it
		uint8_t c;
	};
	OutputCounts counts() const { return {held_.size(), released_, hold_ns_total_}; }
	void FlushLocked();

	mutable std::mutex mu_;

	int fd_;
	bool hold_ = false;
	uint64_t tag_ = 0;
	std::deque<Held> held_;
	std::string out_;
	bool capture_ = false;
	std::string captured_;
	uint64_t written_ = 0, produced_ = 0;
	uint64_t released_ = 0, hold_ns_total_ = 0;
	HoldHistogram hist_;
	std::function<void(const OutputCounts &)> publish_;
};

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
