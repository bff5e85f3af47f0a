// vm.h - one KVM VM with its RAM and its vCPUs (1 to kMaxVcpus), set up for ftvmm's entry
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
constexpr unsigned kMaxVcpus = 8;
// SMP: vCPU n starts with RSP = top of RAM - 4 KiB - n * kVcpuStack.
constexpr uint64_t kVcpuStack = 256 << 10;

class Vm {
public:
	~Vm();
	// mem_bytes: multiple of 4 KiB in [kMinMem, kMaxMem]. dirty_log
	// enables KVM's dirty page log on RAM (record and snapshots).
	// vcpus: 1..kMaxVcpus.
	static Status Create(uint64_t mem_bytes, bool dirty_log, std::unique_ptr<Vm> *out,
			     unsigned vcpus = 1);

	uint8_t *mem() const { return mem_; }
	uint64_t mem_bytes() const { return mem_bytes_; }
	// vCPU 0 unless i is given.
	kvm_run *run(unsigned i = 0) const { return runs_[i]; }
	int vcpu_fd(unsigned i = 0) const { return vcpus_[i].get(); }
	unsigned nr_vcpus() const { return static_cast<unsigned>(vcpus_.size()); }
	int vm_fd() const { return vm_.get(); }

	// Page tables, GDT, registers of every vCPU: ready to start at
	// entry (vCPU n: RSP lowered by n * kVcpuStack, RSI = n, RDX = the
	// number of vCPUs).
	Status SetEntryState(uint64_t entry);
	Status Inject(uint32_t vector);
	// Complete a pending I/O exit without running guest code, so the
	// vCPU state may be read or replaced (KVM_RUN with immediate_exit).
	Status Settle(unsigned i = 0);
	// Pages written since the last call (bit per page), then cleared:
	// KVM's dirty log plus the pages given to MarkDirty.
	Status FetchDirty(std::vector<uint64_t> *bitmap);
	// Pages the VMM wrote itself (device DMA), which KVM does not log.
	void MarkDirty(uint64_t gpa, uint64_t len);
	bool dirty_log() const { return dirty_log_; }
	// Turns KVM's dirty log on for a VM created without it (no-op if on):
	// pages written from now on are logged. With no vCPU in KVM_RUN.
	Status EnableDirtyLog();
	// MSRs saved in checkpoints (those this host lets us read).
	const std::vector<uint32_t> &msrs() const { return msrs_; }
	uint64_t MemHash() const;

private:
	Vm() = default;
	Status SetupCpuid();
	Status SetVcpuEntry(unsigned i, uint64_t entry, size_t gdt_bytes);
	void ProbeMsrs();
	UniqueFd kvm_, vm_;
	std::vector<UniqueFd> vcpus_;
	uint8_t *mem_ = nullptr;
	uint64_t mem_bytes_ = 0;
	std::vector<kvm_run *> runs_;
	size_t run_size_ = 0;
	bool dirty_log_ = false;
	std::vector<uint64_t> vmm_dirty_;	// MarkDirty since FetchDirty
	std::vector<uint32_t> msrs_;
};

} // namespace kvmft::vmm
