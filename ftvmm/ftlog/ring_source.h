// ring_source.h - replay live from a kvm-ft ring: the ring ftlogd fills on
// the secondary host (Documentation/ftlogd.md, "Secondary side").
//
// Records are copied out of the ring (its space is given back at once);
// a record returned stays valid until Next() returns the next VMM_EXIT,
// EPOCH_BEGIN or NET_SENT record, which is more than the engines need (a
// checkpoint never contains an exit, an epoch is applied before the next
// one is read): the records kept are those of one exit or one epoch. When no record arrives for idle_timeout_ns the log
// is considered ended — the primary is gone — and Peek/Next return
// nullptr: the replayer then goes live or stops. A LOST record (the ring
// dropped records) is an error: the log has a hole.
//
// With kernel capture on the primary (ftvmm run --capture kernel) the log
// also holds kvm_ft.ko's probe records (hdr.flags KVM_FT_RECF_KERNEL):
// they are skipped and only counted (kernel_records()). The VMM's own
// records are never dropped, so a kernel LOST record (probe records the
// ring had no room for) is no hole for replay: its count is added up in
// kernel_lost() instead. Kernel records count as activity for the idle
// timeout: a primary whose guest makes only in-kernel exits is alive.
// As a cheap extra check, each of ftvmm's port write records is compared with
// the module's PIO record of the same exit (pio_checked/pio_differ):
// reported, not fatal (the replay itself checks the VMM's records); after a
// kernel LOST record the next write is not checked (its module record may be
// one of the lost). ftvmm's own PIO/MMIO records come wrapped as
// KVM_FT_REC_VMM_WRAP_FIRST + type (kvm_ft.ko takes VMM types only) and
// are unwrapped here.
//
// An SMP primary with kernel capture has one kvm_ft.ko ring per vCPU: its
// own records are all in ring 0 (with vCPU 0's probe records); rings 1..
// hold only the other vCPUs' probe records, drained, counted and released
// here so that they never fill (a VMM record there is an error).
//
// Thread safety: one thread (the vCPU thread) uses a RingSource.
#pragma once

#include <deque>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "ring/ring.h"

namespace kvmft::vmm {

class RingSource : public RecordSource {
public:
	RingSource(RingSet *rings, uint64_t idle_timeout_ns)
		: rings_(rings), cons_(rings->ring(0)), idle_ns_(idle_timeout_ns)
	{
		for (uint32_t i = 1; i < rings->size(); i++)
			others_.emplace_back(rings->ring(i));
	}
	Status Next(const kvm_ft_rec_hdr **rec) override;
	Status Peek(const kvm_ft_rec_hdr **rec) override;
	uint64_t vmm_records() const { return vmm_records_; }	// records of the VMM
	uint64_t kernel_records() const { return kernel_records_; }
	uint64_t kernel_lost() const { return kernel_lost_; }
	uint64_t kernel_other() const { return kernel_other_; } // in rings 1..
	// ftvmm's port write records compared with kvm_ft.ko's PIO record
	// of the same exit (port, size, direction), and how many differed.
	uint64_t pio_checked() const { return pio_checked_; }
	uint64_t pio_differ() const { return pio_differ_; }
	size_t queued() const { return q_.size(); }	// records kept in memory

private:
	Status Fill();
	const kvm_ft_rec_hdr *At(size_t i) const
	{
		return reinterpret_cast<const kvm_ft_rec_hdr *>(q_[i].data());
	}
	Status DrainOthers(size_t *n);
	RingSet *rings_;
	RingConsumer cons_;
	std::vector<RingConsumer> others_; // rings 1.. (kvm_ft.ko's, SMP)
	uint64_t idle_ns_;
	bool ended_ = false;
	uint64_t vmm_records_ = 0;	// records queued for the engine
	uint64_t kernel_records_ = 0;	// probe records skipped
	uint64_t kernel_lost_ = 0;	// probe records the primary's ring dropped
	uint64_t kernel_other_ = 0;	// of kernel_records_, those in rings 1..
	uint64_t pio_checked_ = 0, pio_differ_ = 0;
	kvm_ft_rec_pio kpio_{};		// the module's last PIO record, type 0: used
	std::deque<std::vector<uint64_t>> q_; // records, 8-byte aligned
	size_t next_ = 0;		      // q_[0, next_) already returned
};

} // namespace kvmft::vmm
