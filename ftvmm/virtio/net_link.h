// net_link.h - virtio-net's host side: a Linux tap device, and the output
// rule on the frames the guest sends (Documentation/ftvmm.md "Network
// output").
//
// Modes, like the disk's (disk.h):
//   kDirect  a frame the guest sends goes to the tap at once;
//   kHold    it is tagged with the log position at which the guest sent
//            it and held until Release(ack) with ack >= tag (primary
//            with an ACK);
//   kReplay  it is kept, with the execution position it was sent at,
//            until the log says the primary released it (Forget); at
//            go-live the ones left are sent (SendReplayed): the old
//            primary may not have sent them, and must not lose them.
//   kEpochs  an SMP secondary (applies epochs, runs nothing): the frames
//            kept are the held ones of the last epoch applied (its
//            device state), less those the primary said it sent
//            (ForgetSent); SendReplayed sends them at go-live.
//
// Each frame gets a sequence number (frames sent by the guest before
// it); position = the engine's deterministic-exit count when it was sent.
//
// Thread safety: Send, Release, Forget, SendReplayed and the accessors
// may be called from the vCPU thread and the output releaser at once
// (one mutex); Receive and set_* only from the vCPU thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "output/hold_stats.h"

namespace kvmft::vmm {

class NetLink {
public:
	enum Mode { kDirect, kHold, kReplay, kEpochs };
	static constexpr size_t kMaxFrame = 1514;	// Ethernet, no FCS
	static constexpr size_t kReplayKeep = 4096;	// frames kept in kReplay

	struct Frame {
		uint64_t seq = 0, pos = 0, tag = 0, at_ns = 0;
		std::vector<uint8_t> data;
	};
	struct Stats {
		uint64_t rx_frames = 0, rx_discarded = 0;
		uint64_t tx_frames = 0, tx_sent = 0, tx_write_errors = 0;
		uint64_t held = 0, replay_kept = 0, replay_overflow = 0, replay_sent = 0;
		OutputStats hold;
	};

	// Attaches to tap interface `name` (created if it does not exist,
	// then removed when ftvmm ends), IFF_TAP | IFF_NO_PI, non-blocking.
	static Status OpenTap(const std::string &name, std::unique_ptr<NetLink> *out);
	// Any fd that reads and writes one frame per call (a datagram
	// socket in tests); taken over, made non-blocking.
	static Status FromFd(UniqueFd fd, std::string name, std::unique_ptr<NetLink> *out);

	const std::string &name() const { return name_; }
	int fd() const { return fd_.get(); }
	Mode mode() const { return mode_; }
	void set_mode(Mode m) { mode_ = m; }
	// kHold: called with the new counts whenever a frame is held or
	// released (ftvmm publishes them in its log ring's producer page).
	// Before the VM runs.
	void set_publish(std::function<void(const OutputCounts &)> fn) { publish_ = std::move(fn); }
	// The log position and execution position of the current exit.
	void set_tag(uint64_t tag, uint64_t pos)
	{
		tag_ = tag;
		pos_ = pos;
	}

	// One frame from the tap into buf (kMaxFrame bytes): its length, or
	// 0 when none is waiting. Frames longer than kMaxFrame are dropped.
	size_t Receive(uint8_t *buf);
	// Frames waiting in the tap are dropped (go-live: they were for the
	// old primary); returns how many.
	uint64_t Discard();
	// The guest sent a frame (per the mode).
	void Send(const uint8_t *data, size_t len);
	// kHold: frames tagged <= ack go to the tap, in order.
	void Release(uint64_t ack);
	// Execution position of the newest frame sent to the tap (0: none):
	// the primary logs it (VMM_NET_SENT) so a replayer can forget them.
	uint64_t sent_pos() const { return sent_pos_.load(std::memory_order_acquire); }
	// kReplay: the primary sent every frame issued at positions <= pos.
	void Forget(uint64_t pos);
	// Frames put on the wire so far, counted by sequence number: every
	// frame with seq < sent_count() was sent (SMP: the primary logs it
	// between epochs, VMM_NET_SENT).
	uint64_t sent_count() const { return sent_count_.load(std::memory_order_acquire); }
	// kEpochs: drops the kept frames with seq < count (sent); later
	// SetPending calls drop them too.
	void ForgetSent(uint64_t count);
	// The newest held frames tagged `from` get tag `to` (SMP: the frames
	// of an epoch, tagged pending until its end is logged).
	void Retag(uint64_t from, uint64_t to);
	// kReplay, kEpochs: sends the frames kept (go-live); returns how many.
	uint64_t SendReplayed();
	// Sends a RARP announcement for mac, as a VM that moved does, so that
	// switches learn the new port at once.
	void Announce(const uint8_t mac[6]);
	// Frames held (kHold) or kept (kReplay).
	size_t held() const;
	Stats stats() const;
	// Frames as the device state carries them (ftvmm.md): held or kept.
	std::vector<Frame> pending() const;
	// Checkpoint load. kReplay: adds those not kept already (by seq);
	// kHold: replaces the held ones; kEpochs: replaces the kept ones
	// (less those ForgetSent dropped); kDirect: sends them.
	void SetPending(std::vector<Frame> frames);
	void set_next_seq(uint64_t s) { seq_ = s; }
	uint64_t next_seq() const { return seq_; }

private:
	NetLink() = default;
	void WriteLocked(const Frame &f);

	std::string name_;
	UniqueFd fd_;
	Mode mode_ = kDirect;
	uint64_t tag_ = 0, pos_ = 0, seq_ = 0;
	std::atomic<uint64_t> sent_pos_{0};
	std::atomic<uint64_t> sent_count_{0};
	uint64_t forgot_ = 0;	// kEpochs: ForgetSent's count
	mutable std::mutex mu_;
	std::deque<Frame> q_;	// held (kHold) or kept (kReplay), in order
	HoldHistogram hist_;
	Stats st_;
	std::function<void(const OutputCounts &)> publish_;
	void PublishLocked()
	{
		if (publish_)
			publish_({q_.size(), st_.hold.released, st_.hold.hold_ns_total});
	}
};

} // namespace kvmft::vmm
