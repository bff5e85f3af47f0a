// console.h - the console that carries the UART's output.
// Console output can be held (output rule, Documentation/ftvmm.md): each byte is tagged
// with the log position current when the guest wrote it and released
// only once Release() is given an ACK covering that tag. One byte is one
// output: the console counts the outputs held and released and measures
// each one's hold time (CLOCK_MONOTONIC, from the guest's write to the
// release).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "output/hold_stats.h"

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

} // namespace kvmft::vmm
