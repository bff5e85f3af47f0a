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
#include "hw/stateful.h"
#include "ftlog/record.h"
#include "ftlog/sink.h"
#include "ftlog/source.h"
#include "machine/machine.h"

namespace kvmft::vmm {

struct CkptStats {
	uint64_t count = 0;	// checkpoints written or applied
	uint64_t pages = 0;	// pages in them
	uint64_t bytes = 0;	// record bytes
	uint64_t ns = 0;	// time spent
};

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
