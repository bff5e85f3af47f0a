// record_replay.h - the 1-vCPU replication mode (mode.h): deterministic
// record and replay. Its three roles:
//
//   run     the guest runs; the PIT's IRQ0 reaches it through the PIC.
//   record  as run, and every non-deterministic input goes to a LogSink
//           at its position: each deterministic exit (reason, RIP, I/O
//           values), each interrupt injected, each interrupt-window
//           request, and a checkpoint whenever an interrupt had to be
//           delivered at a non-deterministic point (a guest that ran a
//           time slice without exiting was kicked).
//   replay  re-executes from a RecordSource: every exit is checked
//           against the log, logged input values are returned, interrupts
//           and checkpoints are applied at their positions. A mismatch is
//           a divergence (error EPROTO naming the position). With go_live
//           the engine continues as a primary when the log ends.
//
// Interrupts are injected (KVM_INTERRUPT) only before re-entering after a
// deterministic exit, or right after a checkpoint. Position = count of
// deterministic exits (I/O, MMIO, HLT, requested interrupt window).
//
// Thread safety: an RecordReplay runs on one thread (the vCPU thread).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <functional>
#include <random>

#include "base/status.h"
#include "checkpoint/checkpoint.h"
#include "machine/machine.h"
#include "mode/mode.h"
#include "output/outputs.h"

namespace kvmft::vmm {

struct ReplayStats {
	uint64_t positions = 0;		// deterministic exits
	uint64_t host_exits = 0;	// signals / kicks (not positions)
	uint64_t irqs = 0;		// interrupts injected
	uint64_t windows = 0;		// interrupt windows requested
	uint64_t went_live_at = 0;	// replay: position of go-live, else 0
	uint64_t net_rx = 0;		// frames delivered to the guest
	uint64_t net_resent = 0;	// go-live: replayed frames sent
	CkptStats ckpt;			// checkpoints written or applied
};

class RecordReplay : public Mode, public Stateful {
public:
	explicit RecordReplay(Machine *m, const ModeConfig &cfg = {});
	~RecordReplay() override;
	const char *name() const override { return "record/replay"; }
	void SetRecord(LogSink *sink) override { sink_ = sink; }
	void SetReplay(RecordSource *src)
	{
		src_ = src;
		SetOutputModes();
	}
	// Console bytes, disk writes and network frames wait until the ACK
	// covers them.
	void SetAck(std::function<uint64_t()> ack) override;
	// Every `every` positions (snapshots).
	void SetStopPoints(uint64_t every, std::function<Status()> fn) override;
	Status Run(int *status) override;
	// Runs until the guest ends (*status = its exit status) or, when
	// pause_at is reached, returns with *status = -1 (call again).
	Status RunUntil(int *status, uint64_t pause_at);
	// Replays src; at its end goes live if configured (GoLive).
	Status Follow(RecordSource *src, int *status) override;
	uint64_t pos() const { return pos_; }
	uint64_t position() const override { return pos_; }
	const ReplayStats &stats() const { return st_; }
	bool replaying() const { return src_ != nullptr; }
	// Devices plus the engine's own state, for checkpoints.
	std::vector<Stateful *> state() override;
	void AddStats(nlohmann::json *j) const override;
	uint64_t frames_resent() const override { return st_.net_resent; }

	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	Status Enter();
	Status HandleExit(bool *ended);
	Status BeforeEntry(bool *ended);
	Status DeliverLive();
	Status WaitHalted();
	Status ReplayPending(bool *ended);
	Status ReplayInterrupt(const kvm_ft_rec_hdr *r);
	Status CheckExit(uint32_t reason);
	Status LogIo();
	Status ReplayIo();
	Status Finish(bool *ended);
	Status Append(void *rec, uint32_t len);
	Status Diverged(const std::string &what) const;
	// in_exit: the log ended inside the current exit, whose records stay
	// out of the new log; it starts once the exit is complete.
	Status GoLive(bool in_exit);
	Status StartLog();
	void SetOutputModes();
	// Primary: frames waiting in the tap go into the guest's receive
	// buffers, each logged as NET_RX first; a checkpoint precedes them
	// when the guest was stopped at a non-deterministic point.
	Status NetInput();
	// Primary: NET_SENT when the link sent frames since the last one.
	Status LogNetSent();
	// Primary: DISK_WRITTEN when the file got held writes since the last.
	Status LogDiskWritten();
	Status ReplayNetRx(const kvm_ft_rec_hdr *r);
	// A checkpoint at this stop (not at a deterministic exit), once.
	Status CheckpointHere();
	// virtio-blk's reader: logs the data (record) or returns the logged
	// data (replay).
	Status BlkRead(uint64_t sector, uint8_t *dst, uint32_t bytes);
	Status BlkError();
	// The log ended where `where` says: go live if configured (*live),
	// else an ENODATA error.
	Status LogEnded(const char *where, bool *live, bool in_exit = false);
	void ArmKick();
	void NewJitter();
	uint64_t Rip() const { return m_->vm().run()->s.regs.regs.rip; }

	Machine *m_;
	ModeConfig cfg_;
	LogSink *sink_ = nullptr;
	RecordSource *src_ = nullptr;
	Outputs out_;
	uint64_t stop_every_ = 0;
	std::function<Status()> at_stop_;
	uint64_t pos_ = 0;
	bool at_det_ = true;	// last exit was deterministic (or start)
	bool window_ = false;	// interrupt window requested
	bool halted_ = false;	// guest executed HLT, waits for an interrupt
	bool queued_ = false;	// a vector was injected for the next entry
	bool defer_start_ = false; // went live inside an exit: new log pending
	bool ckpt_here_ = false; // a checkpoint was written at this stop
	uint64_t net_sent_logged_ = 0; // sent_pos of the last NET_SENT
	uint64_t disk_written_logged_ = 0; // written_pos of the last DISK_WRITTEN
	bool ended_ = false;
	int status_ = 0;
	uint64_t jitter_cur_ = 0;
	std::mt19937_64 rng_;
	void *timer_ = nullptr;	// timer_t of the kick timer
	uint64_t armed_at_ = 0;
	ReplayStats st_;
};

} // namespace kvmft::vmm
