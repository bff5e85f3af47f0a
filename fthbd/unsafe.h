// unsafe.h - the active's unsafe queue: updates done on the protected
// directory and not yet acknowledged by the passive, in sequence order.
//
// Who writes what (mu_ guards every field):
//   interception threads: Update() - run the operation and take the next
//     seq under order_ (so seq order is execution order), queue the record,
//     then (sync mode, or an fsync in either mode) wait for its ACK;
//   the link thread: Resume() at each connection, Take() frames to send,
//     Acked(), Degrade() when the channel stayed silent past degrade_ms.
// Lock order: order_ before mu_.
//
// Synchronised means: the passive's safe queue holds, or will be sent,
// every record since the pair started. Only then do updates wait for
// ACKs; a queue that loses a record (overflow, channel lost past the
// degrade time) makes the passive not synchronised until a resync, which
// is not implemented yet.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "config.h"
#include "record.h"

namespace kvmft::hbd {

struct UnsafeStats {
	uint64_t last_seq, acked_seq, queued, queued_bytes;
	bool synced, queueing;
};

class UnsafeQueue {
public:
	UnsafeQueue(Mode mode, uint64_t max_bytes, int wake_fd)
		: mode_(mode), max_bytes_(max_bytes), wake_fd_(wake_fd) {}
	// Runs op (returns >= 0 or -errno) in sequence order and logs r with
	// its result. Returns op's result once the record may be reported
	// done to the application.
	int32_t Update(Record r, const std::function<int32_t()> &op);

	// The passive holds everything up to passive_last: resend from there
	// if the queue still has it. Returns whether the passive is
	// synchronised from now on.
	bool Resume(uint64_t passive_last);
	// Up to max bytes of frames not yet sent (appended to *out).
	void Take(std::string *out, size_t max);
	void Acked(uint64_t seq);
	// The passive is no longer synchronised: stop queueing, release waiters.
	void Degrade();
	// Start numbering after seq (a new active continues the old one's
	// sequence).
	void StartAfter(uint64_t seq);
	UnsafeStats Stats();

private:
	const Mode mode_;
	const uint64_t max_bytes_;
	const int wake_fd_; // eventfd: a record to send
	std::mutex order_;
	std::mutex mu_;
	std::condition_variable cv_;
	uint64_t last_seq_ = 0, acked_ = 0, next_send_ = 1;
	std::deque<std::pair<uint64_t, std::string>> q_; // seq, frame
	uint64_t bytes_ = 0;
	bool synced_ = false;
	bool queueing_ = true; // until the first loss, every record is kept
};

} // namespace kvmft::hbd
