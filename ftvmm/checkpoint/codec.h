// codec.h - the state a checkpoint carries, as log records: guest pages
// (CKPT_PAGE), the state of each vCPU (CKPT_CPU, vCPU 0 first) and of each
// device (CKPT_DEV). Both framings use it: a checkpoint (CKPT_BEGIN ..
// CKPT_END, checkpoint.h) and an epoch (EPOCH_BEGIN .. EPOCH_END,
// epoch/epochs.h).
#pragma once

#include <linux/kvm_ft_vmm.h>

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "ftlog/sink.h"
#include "hw/stateful.h"
#include "vm/vm.h"

namespace kvmft::vmm {

// Forwards to another sink and counts the bytes appended.
class CountingSink : public LogSink {
public:
	explicit CountingSink(LogSink *to) : to_(to) {}
	Status Append(void *rec, uint32_t len) override
	{
		bytes_ += len;
		return to_->Append(rec, len);
	}
	Status Flush() override { return to_->Flush(); }
	uint64_t tag() const override { return to_->tag(); }
	uint64_t bytes() const { return bytes_; }

private:
	LogSink *to_;
	uint64_t bytes_ = 0;
};

// Appends the pages, every vCPU's state and the devices' state, each
// record at position pos. kind FULL: every non-zero page; DELTA: the pages
// KVM's dirty log reports since the last fetch (the VM must have it on).
// With the dirty log on, a FULL fetches it too, so the next DELTA starts
// here. The vCPUs are settled (not in KVM_RUN). *pages: how many.
Status PutState(Vm &vm, const std::vector<Stateful *> &devs, LogSink *sink, uint32_t kind,
		uint64_t pos, uint32_t *pages);

// The state records of one checkpoint or epoch, each checked as it is
// read, applied only once the whole frame was read.
class StateRecords {
public:
	explicit StateRecords(Vm &vm) : vm_(vm) {}
	// A CKPT_PAGE, CKPT_CPU or CKPT_DEV record: checked and kept
	// (*taken); another type is left to the caller (!*taken). An error
	// names what is wrong with the record.
	Status Add(const kvm_ft_rec_hdr *r, bool *taken);
	uint32_t pages() const { return pages_; }
	unsigned cpus() const { return cpus_; }
	// Zeroes guest RAM first if full, then writes the pages, loads the
	// n-th CKPT_CPU into vCPU n and each CKPT_DEV into the device of its
	// id. A state KVM or a device refuses leaves the VM partly updated:
	// it must not run then.
	Status Apply(const std::vector<Stateful *> &devs, bool full);

private:
	Vm &vm_;
	std::vector<const kvm_ft_rec_hdr *> recs_;
	uint32_t pages_ = 0;
	unsigned cpus_ = 0;
};

} // namespace kvmft::vmm
