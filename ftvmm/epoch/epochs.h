// epochs.h - the replication mode by epochs (mode.h), for any number of
// vCPUs (Documentation/ftvmm.md, "SMP"). There is no instruction replay:
// a recorder stops all vCPUs at the end of each epoch and logs one
// checkpoint of all of them (EPOCH_BEGIN .. EPOCH_END,
// uapi/linux/kvm_ft_vmm.h). Console bytes of an
// epoch, and its virtio-blk writes, are tagged with the log position
// after its EPOCH_END and are released once the peer acknowledged it
// (output rule); writes not yet released travel in each epoch's device
// state. virtio-net frames the guest sends are held the same way (and
// travel in the device state); frames from the tap go into the guest's
// receive buffers on vCPU 0, and the epoch's pages carry them. Between
// epochs the primary logs NET_SENT: how many frames it has put on the
// wire, so that a secondary does not send those again.
//
// The vCPU threads and their wake-up protocol: vcpus.h.
//
// A replayer applies each complete epoch to its memory and vCPU/device
// state without running the guest; with go-live it then runs on as the
// primary from the last complete epoch, after writing that epoch's
// pending disk writes (on the primary's file, Disk::kEpochs; a private
// copy, Disk::kEpochsPrivate, got each epoch's writes as it was applied)
// and sending that epoch's held frames the primary had not reported sent
// (NetLink::kEpochs); a peer may see a duplicate frame, never a loss.
//
// Thread safety: one Epochs is driven by one thread (Run, ApplyLog, Follow);
// its Vcpus start and join the vCPU threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "epoch/vcpus.h"
#include "ftlog/sink.h"
#include "ftlog/source.h"
#include "machine/machine.h"
#include "mode/mode.h"
#include "output/outputs.h"

namespace kvmft::vmm {

// Console bytes per DATA record of an epoch.
constexpr size_t kEpochDataMax = 4096;

struct EpochStats {
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
	uint64_t net_rx = 0;		// record: frames given to the guest
	uint64_t net_resent = 0;	// go-live: held frames sent
	uint64_t early_epochs = 0;	// record: epochs ended at min_epoch_ns
					// because a frame was held
};

class Epochs : public Mode {
public:
	Epochs(Machine *m, const ModeConfig &cfg);
	~Epochs() override;
	Epochs(const Epochs &) = delete;
	Epochs &operator=(const Epochs &) = delete;
	const char *name() const override { return "epochs"; }
	// Record: the first epoch is FULL, then one DELTA per epoch_ns.
	void SetRecord(LogSink *sink) override { sink_ = sink; }
	// Called at the end of every `every`-th epoch with all vCPUs
	// stopped, after the epoch's record (if any); epochs also run
	// without a record when this is set (snapshots).
	void SetStopPoints(uint64_t every, std::function<Status()> fn) override;
	// Output hold: ack() returns the log position the peer covers.
	void SetAck(std::function<uint64_t()> ack) override;
	// Runs the guest until it ends (*status = its exit status).
	Status Run(int *status) override;
	// Replay: applies every complete epoch of src. Returns at the END
	// record (*status = the guest's status, stats().ended) or at the end
	// of the log (*status = -1). A hash mismatch is EPROTO; a malformed
	// epoch EINVAL naming the record.
	Status ApplyLog(RecordSource *src, int *status);
	// ApplyLog, then at the end of the log go live from the last
	// complete epoch (ModeConfig::go_live) and Run.
	Status Follow(RecordSource *src, int *status) override;
	uint64_t position() const override { return 0; }
	std::vector<Stateful *> state() override { return m_->devices(); }
	void AddStats(nlohmann::json *j) const override;
	uint64_t frames_resent() const override { return st_.net_resent; }
	// From another thread: stops a running VM; Run returns `why`.
	void Abort(const Status &why) { vcpus_.Fail(why); }
	const EpochStats &stats() const { return st_; }
	// For a diagnosis: the wake-up protocol's flags and where vCPU 0 is.
	std::string WakeState() { return vcpus_.WakeState(); }

	// Console bytes of a running epoch carry this tag until its end.
	static constexpr uint64_t kEpochPending = UINT64_MAX;

private:
	Status WriteEpoch();
	// Between epochs: NET_SENT, if more frames were sent since the last.
	Status LogNetSent();
	Status ApplyEpoch(const kvm_ft_rec_hdr *begin, RecordSource *src, bool *complete);
	Status NetSent(const kvm_ft_rec_hdr *r);

	Machine *m_;
	ModeConfig cfg_;
	LogSink *sink_ = nullptr;
	Outputs out_;
	uint64_t stop_every_ = 1;
	std::function<Status()> at_epoch_;
	Vcpus vcpus_;
	uint64_t number_ = 0;		// epochs written
	uint64_t net_sent_logged_ = 0;	// last NET_SENT count
	EpochStats st_;
};

} // namespace kvmft::vmm
