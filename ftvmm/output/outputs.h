// outputs.h - the output rule over all of a VM's outputs (console bytes,
// virtio-blk writes, virtio-net frames; Documentation/ftvmm.md, "Output
// rule"): each is held until the peer's ACK covers the log position it
// was tagged with, then released. Every replication mode holds, releases
// and drains its outputs through one Outputs; go-live releases what a
// secondary kept (GoLiveOutputs).
//
// Thread safety: Release and Held from the mode's thread while the
// output releaser (releaser.h) releases the console and frames too (they
// have their own locks); disk writes are released under the machine's
// io_mu.
#pragma once

#include <cstdint>
#include <functional>

#include "base/status.h"
#include "ftlog/sink.h"
#include "machine/machine.h"

namespace kvmft::vmm {

class Outputs {
public:
	explicit Outputs(Machine *m) : m_(m) {}
	// ack: the log position the peer covers; none = nothing is held.
	// With an ACK the console holds its bytes, and each source's figures
	// go to sink's PublishOutputs (ftlogd's session statistics).
	void SetAck(std::function<uint64_t()> ack, LogSink *sink);
	bool held_by_ack() const { return static_cast<bool>(ack_); }
	uint64_t Ack() const { return ack_ ? ack_() : 0; }
	// Releases what the ACK covers (nothing without an ACK).
	Status Release();
	// Outputs held now: console bytes, disk writes, frames.
	size_t Held() const;
	// The end of a run: releases until nothing is held; after timeout_ns
	// an error says what is still held.
	Status Drain(uint64_t timeout_ns);

private:
	Machine *m_;
	std::function<uint64_t()> ack_;
};

// NET_SENT(sent) at position pos if sent > *logged (then *logged = sent
// and *appended). sent's unit is the mode's (kvm_ft_vmm_net_sent).
Status LogSent(LogSink *sink, uint64_t pos, uint64_t sent, uint64_t *logged,
	       bool *appended = nullptr);

// Going live: the secondary's outputs become the primary's. The disk
// writes it kept (replayed, or pending in the last epoch applied) go to
// the file in log order; frames in its tap (for the old primary) are
// dropped, those the log did not report sent are sent (a peer may see a
// duplicate, never a loss), then the VM's MAC is announced. *resent: the
// frames sent.
Status GoLiveOutputs(Machine &m, uint64_t *resent);

} // namespace kvmft::vmm
