// smp.h - ftvmm with more than one vCPU (Documentation/ftvmm.md, "SMP").
//
// Every vCPU runs on its own thread; device emulation is serialised by
// Machine::io_mu() (one mutex around each bus dispatch and around the
// interrupt delivery to vCPU 0, the only vCPU that gets device
// interrupts). There is no instruction replay: a recorder stops all vCPUs
// at the end of each epoch and logs one checkpoint of all of them
// (EPOCH_BEGIN .. EPOCH_END, uapi/linux/kvm_ft_vmm.h). Console bytes of an
// epoch, and its virtio-blk writes, are tagged with the log position
// after its EPOCH_END and are released once the peer acknowledged it
// (output rule); writes not yet released travel in each epoch's device
// state.
//
// A replayer applies each complete epoch to its memory and vCPU/device
// state without running the guest; with go-live it then runs on as the
// primary from the last complete epoch, after writing that epoch's
// pending disk writes (its disk must be the primary's file: Disk::kEpochs).
//
// Thread safety: one SmpVm is driven by one thread (Run, ApplyLog); it
// starts and joins the vCPU threads itself.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"
#include "checkpoint.h"
#include "logfile.h"
#include "machine.h"

namespace kvmft::vmm {

struct SmpConfig {
	uint64_t epoch_ns = 20000000;	// epoch length when recording
	uint64_t slice_ns = 10000000;	// a due timer interrupt kicks vCPU 0
					// after at most this long
	bool hash_epochs = false;	// put the RAM hash into EPOCH_END
	uint64_t hold_timeout_ns = 10000000000ULL; // end of run: wait this
					// long for the ACK of the last epoch
};

struct SmpStats {
	uint64_t epochs = 0;		// written (record)
	uint64_t applied = 0;		// applied (replay)
	uint64_t pages = 0;		// CKPT_PAGE records in them
	std::vector<uint64_t> epoch_bytes; // record: log bytes per epoch
	std::vector<uint64_t> stop_ns;	// record: time the vCPUs were stopped
					// per epoch (not epoch 0: before they
					// start)
	uint64_t console_bytes = 0;	// replay: console bytes covered by
					// the last epoch applied
	uint64_t last_hash = 0;		// replay: mem_hash of that epoch (0
					// if the primary did not compute it)
	bool ended = false;		// replay: the log's END was reached
	bool torn_epoch = false;	// replay: an incomplete epoch was
					// discarded at the end of the log
};

class SmpVm {
public:
	SmpVm(Machine *m, const SmpConfig &cfg);
	~SmpVm();
	SmpVm(const SmpVm &) = delete;
	SmpVm &operator=(const SmpVm &) = delete;
	// Record: the first epoch is FULL, then one DELTA per epoch_ns.
	void SetRecord(LogSink *sink) { sink_ = sink; }
	// Called at the end of every epoch with all vCPUs stopped, after
	// the epoch's record (if any); epochs also run without a record
	// when this is set (snapshots). An error stops the VM.
	void SetAtEpoch(std::function<Status()> fn) { at_epoch_ = std::move(fn); }
	// Output hold: ack() returns the log position the peer covers.
	void SetAck(std::function<uint64_t()> ack) { ack_ = std::move(ack); }
	// Runs the guest until it ends (*status = its exit status).
	Status Run(int *status);
	// Replay: applies every complete epoch of src. Returns at the END
	// record (*status = the guest's status, stats().ended) or at the end
	// of the log (*status = -1). A hash mismatch is EPROTO; a malformed
	// epoch EINVAL naming the record.
	Status ApplyLog(RecordSource *src, int *status);
	const SmpStats &stats() const { return st_; }

	// Console bytes of a running epoch carry this tag until its end.
	static constexpr uint64_t kEpochPending = UINT64_MAX;

private:
	void VcpuLoop(unsigned i);
	Status HandleExit(unsigned i, bool *halted);
	void DeliverIrq();
	void Stop();
	void Resume();
	Status WriteEpoch();
	// The held disk writes the ACK covers go to the file.
	Status ReleaseDisk();
	Status ApplyEpoch(const kvm_ft_rec_hdr *begin, RecordSource *src, bool *complete);
	void Fail(const Status &s);
	void Kick(unsigned i);

	Machine *m_;
	SmpConfig cfg_;
	LogSink *sink_ = nullptr;
	std::function<uint64_t()> ack_;
	std::function<Status()> at_epoch_;
	std::vector<std::thread> thr_;
	std::vector<pthread_t> tids_;

	std::mutex mu_;			// guards the fields below
	std::condition_variable cv_;
	bool stop_ = false;		// vCPUs must park
	bool ended_ = false;		// guest ended or failed
	unsigned parked_ = 0;
	int status_ = 0;
	Status err_ = Status::Ok();

	uint64_t number_ = 0;		// epochs written
	SmpStats st_;
};

} // namespace kvmft::vmm
