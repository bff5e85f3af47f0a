// vm.h - one KVM VM with its RAM and one vCPU, set up for ftvmm's entry
// state (Documentation/ftvmm.md, "Entry state"): 64-bit long mode, the
// first 4 GiB identity-mapped with 2 MiB user pages, a flat GDT.
//
// Low memory layout (guest physical), reserved for the VMM:
//   0x1000 GDT (null, code 0x08, data 0x10)   0x2000 PML4
//   0x3000 PDPT                                0x4000..0x7fff page directories
// Images must not load below kImageMin.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace kvmft::vmm {

constexpr uint64_t kGdtAddr = 0x1000;
constexpr uint64_t kPml4Addr = 0x2000;
constexpr uint64_t kImageMin = 0x10000;
constexpr uint64_t kMaxMem = 3ULL << 30;	 // below the device hole
constexpr uint64_t kMinMem = 2ULL << 20;
constexpr uint64_t kPageSize = 4096;

class Vm {
public:
	~Vm();
	// mem_bytes: multiple of 4 KiB in [kMinMem, kMaxMem]. dirty_log
	// enables KVM's dirty page log on RAM (record and snapshots).
	static Status Create(uint64_t mem_bytes, bool dirty_log, std::unique_ptr<Vm> *out);

	uint8_t *mem() const { return mem_; }
	uint64_t mem_bytes() const { return mem_bytes_; }
	kvm_run *run() const { return run_; }
	int vcpu_fd() const { return vcpu_.get(); }
	int vm_fd() const { return vm_.get(); }

	// Page tables, GDT, registers: ready to start at entry.
	Status SetEntryState(uint64_t entry);
	Status Inject(uint32_t vector);
	// Complete a pending I/O exit without running guest code, so the
	// vCPU state may be read or replaced (KVM_RUN with immediate_exit).
	Status Settle();
	// Pages written since the last call (bit per page), then cleared:
	// KVM's dirty log plus the pages given to MarkDirty.
	Status FetchDirty(std::vector<uint64_t> *bitmap);
	// Pages the VMM wrote itself (device DMA), which KVM does not log.
	void MarkDirty(uint64_t gpa, uint64_t len);
	bool dirty_log() const { return dirty_log_; }
	// MSRs saved in checkpoints (those this host lets us read).
	const std::vector<uint32_t> &msrs() const { return msrs_; }
	uint64_t MemHash() const;

private:
	Vm() = default;
	Status SetupCpuid();
	void ProbeMsrs();
	UniqueFd kvm_, vm_, vcpu_;
	uint8_t *mem_ = nullptr;
	uint64_t mem_bytes_ = 0;
	kvm_run *run_ = nullptr;
	size_t run_size_ = 0;
	bool dirty_log_ = false;
	std::vector<uint64_t> vmm_dirty_;	// MarkDirty since FetchDirty
	std::vector<uint32_t> msrs_;
};

} // namespace kvmft::vmm
