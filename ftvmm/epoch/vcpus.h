// vcpus.h - the vCPU threads of a VM replicated by epochs (epochs.h):
// every vCPU runs on its own thread; device emulation is serialised by
// Machine::io_mu() (one mutex around each bus dispatch and around the
// interrupt delivery to vCPU 0, the only vCPU that gets device
// interrupts). The epoch thread parks them all (Stop) to write an epoch,
// then lets them go on (Resume).
//
// vCPU 0 wake-up protocol (who writes what; all under mu_):
//   wake0_     set by the rx poller thread (a frame waits in the tap), by
//              the receiveq notify hook (the guest added buffers while
//              frames waited) and by another vCPU's I/O that raised a PIC
//              line; each setter also sets vCPU 0's immediate_exit and
//              signals it, so that a vCPU 0 inside or entering KVM_RUN
//              comes out; cleared by vCPU 0 when it leaves its HLT wait.
//   rx_wait_   set by the poller when the tap is readable; cleared by
//              vCPU 0 (io_mu held) once a Receive found the tap empty.
//              The poller polls again only after it is cleared: one
//              wake-up per burst, never a busy loop.
//   rx_starved_ set by vCPU 0 when frames wait but the guest offers no
//              buffer; cleared by the notify hook, which then wakes vCPU 0.
//   tx_wait_   set by the transmit hook (any vCPU, io_mu held) when the
//              guest sent a frame, with cv_ notified; read and cleared by
//              the epoch thread, which then ends the epoch min_epoch_ns
//              after its start. Cleared only with every vCPU parked, so
//              a frame sent in the next epoch sets it again.
// vCPU 0 clears immediate_exit at the top of its loop and only then reads
// rx_wait_ (in DeliverIrq): a setter that came before the clear is seen
// by that read, one after it makes the next KVM_RUN return at once.
// Lock order: io_mu, then mu_.
//
//
// Thread safety: Start, Stop, Resume, Wait, TxSent, KickIfTimerDue and
// Join from the one thread that drives the VM; Fail and WakeState from any.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "machine/machine.h"

namespace kvmft::vmm {

class Vcpus {
public:
	explicit Vcpus(Machine *m);
	~Vcpus(); // Join
	Vcpus(const Vcpus &) = delete;
	Vcpus &operator=(const Vcpus &) = delete;
	// Starts a thread per vCPU and, with a network, the rx poller.
	// watch_tx: a frame the guest sends sets the flag TxSent reads and
	// wakes Wait.
	void Start(bool watch_tx);
	// Parks every vCPU outside KVM_RUN with its last exit completed and
	// clears the frame-sent flag. False if the guest ended meanwhile.
	bool Stop();
	void Resume();
	// Sleeps until until_ns (MonotonicNs), the guest's end or, unless
	// tx_seen, a frame sent. False once the guest ended (or failed).
	bool Wait(uint64_t until_ns, bool tx_seen);
	// Whether the guest sent a frame since the last Stop.
	bool TxSent();
	// vCPU 0 is kicked if the timer's edge is due.
	void KickIfTimerDue();
	// Ends the threads (the guest ended, or failed: the error), keeping
	// the VM's last state; *status is the guest's exit status.
	Status Join(int *status);
	// Stops the VM: Wait returns false, Join returns s.
	void Fail(const Status &s);
	// For a diagnosis: the protocol's flags and where vCPU 0 is
	// (running, halted, parked), as one line.
	std::string WakeState();
	// Frames given to the guest.
	uint64_t net_rx() const { return net_rx_; }

private:
	void VcpuLoop(unsigned i);
	Status HandleExit(unsigned i, bool *halted);
	bool DeliverIrq();
	// vCPU 0, io_mu held: frames from the tap into the guest's buffers.
	void NetInput();
	// The rx poller thread (with --net).
	void RxPoller();
	// mu_ held: vCPU 0 must look at its devices (protocol above).
	void WakeVcpu0Locked();
	void Kick(unsigned i);

	Machine *m_;
	std::vector<std::thread> thr_;
	std::vector<pthread_t> tids_;	// written once each before started_
	std::mutex start_mu_;		// the start barrier (Start)
	std::condition_variable start_cv_;
	unsigned started_ = 0;

	std::mutex mu_;			// guards the fields below
	std::condition_variable cv_;
	bool stop_ = false;		// vCPUs must park
	bool ended_ = false;		// guest ended or failed
	unsigned parked_ = 0;
	int status_ = 0;
	Status err_ = Status::Ok();

	bool wake0_ = false;		// protocol above
	bool rx_wait_ = false;
	bool rx_starved_ = false;
	bool tx_wait_ = false;
	std::thread rx_thr_;
	// Where vCPU 0 is (WakeState): written by vCPU 0 only.
	enum Place { kInRun, kHaltedWait, kParked, kDevices };
	std::atomic<int> vcpu0_at_{kDevices};
	std::atomic<uint64_t> injected_{0};
	std::atomic<uint64_t> net_rx_{0};
};

} // namespace kvmft::vmm
