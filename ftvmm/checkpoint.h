// checkpoint.h - checkpoints: vCPU state, device state and guest pages as
// a run of log records (CKPT_BEGIN, CKPT_PAGE..., CKPT_CPU (one per vCPU,
// vCPU 0 first), CKPT_DEV...,
// CKPT_END; uapi/linux/kvm_ft_vmm.h). The same records make a checkpoint
// in an FT log, a snapshot file (FULL) and a delta file (DELTA).
//
// A DELTA holds the pages KVM's dirty log reports since the previous
// checkpoint of this VM (the VM must have been created with dirty_log);
// a FULL holds every non-zero page and restarts the dirty log.
#pragma once

#include <linux/kvm_ft_vmm.h>

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "devices.h"
#include "logfile.h"
#include "machine.h"

namespace kvmft::vmm {

// Where records are read from: a file (LogReader) or a ring. A record
// returned stays valid as long as the source lives.
class RecordSource {
public:
	virtual ~RecordSource() = default;
	virtual Status Next(const kvm_ft_rec_hdr **rec) = 0;  // nullptr at end
	virtual Status Peek(const kvm_ft_rec_hdr **rec) = 0;
};

class FileSource : public RecordSource {
public:
	explicit FileSource(LogReader *r) : r_(r) {}
	Status Next(const kvm_ft_rec_hdr **rec) override { return r_->Next(rec); }
	Status Peek(const kvm_ft_rec_hdr **rec) override { return r_->Peek(rec); }

private:
	LogReader *r_;
};

struct CkptStats {
	uint64_t count = 0;	// checkpoints written or applied
	uint64_t pages = 0;	// pages in them
	uint64_t bytes = 0;	// record bytes
	uint64_t ns = 0;	// time spent
};

// Fills the common header of a record about to be appended.
void InitRec(kvm_ft_rec_hdr *h, uint16_t type, uint32_t len, uint64_t pos);

// devs: the machine's devices plus the engine's own state. With more than
// one vCPU the caller has stopped and settled every vCPU.
Status WriteCheckpoint(Machine &m, const std::vector<Stateful *> &devs,
		       LogSink *sink, uint32_t kind, uint64_t pos,
		       uint64_t number, CkptStats *st);
// *begin is the CKPT_BEGIN record just read from src; reads through
// CKPT_END and checks the framing before changing anything: a log ending
// inside the checkpoint (ENODATA) or a malformed frame leaves the VM as
// it was. A device or CPU state KVM refuses while applying leaves the VM
// partly updated: it must not run then.
Status ApplyCheckpoint(Machine &m, const std::vector<Stateful *> &devs,
		       const kvm_ft_rec_hdr *begin, RecordSource *src, CkptStats *st);

} // namespace kvmft::vmm
