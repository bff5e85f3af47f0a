// disk.h - the file behind virtio-blk, with the overlay that holds writes
// back (output rule, Documentation/ftvmm.md "Disk writes").
//
// Six modes:
//   kDirect  writes go to the file at once (plain run, --record FILE,
//            restore, a replayer after going live without an ACK).
//   kHold    the primary with an ACK: each write is kept in the overlay,
//            tagged with the log position of the exit that issued it, and
//            reaches the file only when Release() gets an ACK covering the
//            tag. Reads see the overlay over the file.
//   kReplay  the secondary on the primary's file (shared storage):
//            writes are kept in the overlay whatever the ACK and the file
//            is neither read nor written; Forget() drops those the
//            primary reports written (DISK_WRITTEN), ApplyAll() at
//            go-live writes the rest, in log order.
//   kEpochs  an SMP secondary (applies epochs, runs nothing): the
//            overlay is the pending writes of the last epoch applied
//            (its device state), written by ApplyAll() at go-live; the
//            file is neither read nor written before.
//   kReplayPrivate  the secondary with a disk of its own (a private
//            copy, not the primary's file): each replayed write goes to
//            the file at once, in log order, so nothing accumulates;
//            FLUSH syncs; a checkpoint's pending writes are ignored (as
//            in kReplay: the replayer issued them itself).
//   kEpochsPrivate  an SMP secondary with a disk of its own: each epoch
//            applied writes to the file, in order, those of its pending
//            writes not written yet (by sequence number: every write is
//            pending in the epoch that issued it), then syncs; nothing is
//            left for go-live.
// Every write gets a sequence number, the count of writes issued before
// it (kept in checkpoints, so it goes on across go-live and restore).
// The overlay is an ordered list of writes; a read applies, over the
// file's bytes, every overlapping write in order, so the last write wins.
//
// Thread safety: none; used by the vCPU thread (SMP: under
// Machine::io_mu()).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "output/hold_stats.h"

namespace kvmft::vmm {

constexpr uint32_t kSectorSize = 512;

class Disk {
public:
	enum Mode { kDirect, kHold, kReplay, kReplayPrivate, kEpochs, kEpochsPrivate };
	struct Write {
		uint64_t tag;	// log position (LogSink::tag()) when issued
		uint64_t sector;
		std::vector<uint8_t> data;
		uint64_t at_ns = 0; // kHold: when issued (hold time), 0 if unknown
		uint64_t pos = 0;   // execution position of the issuing exit
		uint64_t seq = 0;   // writes issued before this one
	};
	// kReplay: writes dropped by Forget(), the most kept at once, and
	// those ApplyAll() wrote at go-live; kEpochsPrivate: those
	// ApplyEpoch() wrote to the private copy.
	struct ReplayStats {
		uint64_t dropped = 0, peak = 0, applied = 0, copied = 0;
	};

	// path: a regular file whose size is a multiple of 512, opened
	// read-write.
	static Status Open(const std::string &path, std::unique_ptr<Disk> *out);
	uint64_t sectors() const { return sectors_; }
	const std::string &path() const { return path_; }

	Mode mode() const { return mode_; }
	void set_mode(Mode m) { mode_ = m; }
	void set_tag(uint64_t tag) { tag_ = tag; }
	// The execution position of the current exit (every mode).
	void set_pos(uint64_t pos) { pos_ = pos; }

	// REQUIRES: [sector, sector + bytes / 512) within the disk, bytes a
	// multiple of 512. Read is not for the kReplay modes (data comes from
	// the log).
	Status Read(uint64_t sector, uint8_t *dst, uint32_t bytes) const;
	Status WriteAt(uint64_t sector, const uint8_t *src, uint32_t bytes);
	// kDirect: fdatasync. Otherwise the writes it covers are synced when
	// they are released.
	Status Flush();
	// Writes the overlay entries tagged <= ack to the file, in order, and
	// syncs if any were written. Only in kHold (no-op otherwise).
	Status Release(uint64_t ack);
	// Writes the whole overlay to the file in order and syncs (go-live).
	Status ApplyAll();
	// kHold: every write issued at a position <= written_pos() is in the
	// file and synced (0: none yet). The primary logs it (DISK_WRITTEN).
	uint64_t written_pos() const { return written_pos_; }
	// kReplay: drops the kept writes issued at a position <= pos (the
	// file already holds them); no-op in the other modes.
	void Forget(uint64_t pos);
	ReplayStats replay_stats() const { return rs_; }
	const std::deque<Write> &overlay() const { return overlay_; }
	// The newest held writes tagged `from` get tag `to` (SMP: the writes
	// of an epoch, tagged pending until its end is logged).
	void Retag(uint64_t from, uint64_t to);
	// Checkpoint load: replace the overlay (tags become 0) and the count
	// of writes issued. REQUIRES: w's seqs increasing, below next_seq.
	void SetOverlay(std::deque<Write> w, uint64_t next_seq)
	{
		overlay_ = std::move(w);
		next_seq_ = next_seq;
	}
	// An SMP secondary's epoch (its pending writes, oldest first, and the
	// count of writes issued by its end): kEpochs keeps them (SetOverlay);
	// kEpochsPrivate writes the new ones to the file. An epoch whose
	// oldest pending write comes after one never seen is refused (the log
	// lost a write). REQUIRES: as SetOverlay.
	Status ApplyEpoch(std::deque<Write> w, uint64_t next_seq);
	uint64_t next_seq() const { return next_seq_; }
	uint64_t held_bytes() const;
	// kHold: counts and hold time percentiles (one output = one write
	// request, held from its issue to its release).
	OutputStats stats() const;
	// kHold: called with the new counts (one output = one write request)
	// whenever a write is held or released (ftvmm publishes them in its
	// log ring's producer page). Before the VM runs.
	void set_publish(std::function<void(const OutputCounts &)> fn) { publish_ = std::move(fn); }

private:
	Disk() = default;
	Status WriteOut(uint64_t upto, uint64_t now_ns);
	Status PutFile(uint64_t sector, const uint8_t *src, size_t bytes);
	std::string path_;
	UniqueFd fd_;
	uint64_t sectors_ = 0;
	Mode mode_ = kDirect;
	uint64_t tag_ = 0, pos_ = 0;
	uint64_t written_pos_ = 0; // kHold: see written_pos()
	uint64_t next_seq_ = 0;	   // writes issued so far (Write::seq)
	bool epoch_seen_ = false;  // kEpochsPrivate: an epoch was applied
	ReplayStats rs_;
	std::deque<Write> overlay_;
	uint64_t released_ = 0, hold_ns_total_ = 0; // kHold releases
	HoldHistogram hist_;
	std::function<void(const OutputCounts &)> publish_;
	void Publish();
};

} // namespace kvmft::vmm
