// mode.h - a replication mode: how a VM's execution reaches its
// secondary, and how the secondary follows it and goes live.
//
//   RecordReplay (replay/)  1 vCPU: every non-deterministic input is
//                           logged at its position; the secondary
//                           re-executes the guest in lockstep.
//   Epochs (epoch/)         any number of vCPUs: all stop at the end of
//                           each epoch, which is logged as a checkpoint;
//                           the secondary applies the epochs, runs nothing.
//
// Both record into a LogSink (ftlog/), hold outputs by the peer's ACK
// (output/), write and apply state with one codec (checkpoint/), and go
// live through output/'s GoLiveOutputs. A new mode implements this interface;
// `ftvmm run` and `ftvmm replay` (cli/) drive every mode the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "ftlog/sink.h"
#include "ftlog/source.h"
#include "hw/stateful.h"
#include "machine/machine.h"

namespace kvmft::vmm {

struct ModeConfig {
	// Both modes.
	uint64_t slice_ns = 10000000;	// a due timer interrupt kicks the
					// guest after at most this long
	bool go_live = false;		// secondary: become the primary at
					// the end of the log
	bool private_disk = false;	// secondary: the disk is this host's
					// own copy, written as the log is
					// followed (not the primary's file)
	std::function<Status()> before_live; // secondary: asked before going
					// live (the VM's lock); an error
					// stops instead
	std::function<void(const std::string &)> say; // what the mode tells
					// the administrator (ftvmm's stderr)
	uint64_t hold_timeout_ns = 10000000000ULL; // end of a run: how long
					// to wait for the ACK of the last
					// outputs
	// RecordReplay.
	uint64_t jitter_ns = 0;		// delay each PIT edge by a random
					// amount up to this (tests)
	uint64_t seed = 1;		// jitter randomness
	// Epochs.
	uint64_t epoch_ns = 20000000;	// epoch length when recording
	uint64_t min_epoch_ns = 2000000; // with an ACK: an epoch in which the
					// guest sent a frame ends this long
					// after its start (0: epoch_ns always)
	bool hash_epochs = false;	// put the RAM hash into EPOCH_END
};

class Mode {
public:
	virtual ~Mode() = default;
	virtual const char *name() const = 0;
	// Primary: log into sink (nullptr: run unprotected).
	virtual void SetRecord(LogSink *sink) = 0;
	// Output rule: ack() is the log position the peer covers; outputs
	// wait for it (Outputs).
	virtual void SetAck(std::function<uint64_t()> ack) = 0;
	// fn runs every `every` steps of the mode (positions, epochs) with
	// every vCPU stopped: snapshots. An error stops the VM.
	virtual void SetStopPoints(uint64_t every, std::function<Status()> fn) = 0;
	// Runs the guest until it ends: *status is its exit status.
	virtual Status Run(int *status) = 0;
	// Secondary: follows src to its end. At an END record the guest's
	// status is *status; at the end of the log it goes live (go_live,
	// before_live) and runs on as the primary, else it returns an
	// ENODATA error.
	virtual Status Follow(RecordSource *src, int *status) = 0;
	// The log position a checkpoint taken now carries (record/replay:
	// deterministic exits so far; epochs: 0).
	virtual uint64_t position() const = 0;
	// What a checkpoint of this VM holds besides RAM and vCPUs.
	virtual std::vector<Stateful *> state() = 0;
	// The mode's figures for --stats (Documentation/ftvmm.md).
	virtual void AddStats(nlohmann::json *j) const = 0;
	// Frames sent again at go-live (those the log did not report sent).
	virtual uint64_t frames_resent() const = 0;
};

// RecordReplay for one vCPU, Epochs for more.
std::unique_ptr<Mode> MakeMode(Machine *m, const ModeConfig &cfg);

} // namespace kvmft::vmm
