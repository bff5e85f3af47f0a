// kernel_sink.h - the FT log into kvm_ft.ko's ring of this VM: the VMM's
// output mode when the module is loaded (ftvmm run --capture kernel).
//
// ftvmm attaches its own VM (KVM_FT_ATTACH with its VM fd, one ring per
// vCPU) and appends its records with KVM_FT_APPEND to ring 0; the module's
// probes write their records (KVM_FT_RECF_KERNEL) into their vCPU's ring,
// vCPU 0's in exit order with ftvmm's. With more than one vCPU (epochs)
// ftvmm appends from the epoch thread while vCPU 0 may run: the module
// serializes an append with that vCPU's probes (kmod/ft_ring.c). ftlogd
// ships the session like any kvm_ft.ko session (register kind kvm_ft).
//
// The module accepts VMM record types only: ftvmm's own PIO/MMIO records
// (capture types) are appended as KVM_FT_REC_VMM_WRAP_FIRST + type and
// RingSource turns them back.
//
// Same waiting semantics as RingSink: a VMM record is never dropped; when
// the ring is full (EAGAIN) Append waits, and waiting longer than the
// stall limit is an error. tag() and Ack() are ring byte positions, as in
// RingSink. The producer page is the kernel's (read-only here), so the
// output rule's figures are not published there.
//
// Thread safety: one thread (the vCPU thread) appends.
#pragma once

#include <atomic>

#include "base/unique_fd.h"
#include "ftlog/file.h"
#include "ring/ring.h"

namespace kvmft::vmm {

// True if /dev/kvm_ft exists (the module is loaded).
bool KernelCaptureAvailable();
// Attaches kvm_ft.ko capture to the VM behind vm_fd with one ring of
// ring_bytes per vCPU (vCPU i's probe records go to ring i; the sink
// appends to ring 0): *session is the session fd.
Status AttachKernelCapture(int vm_fd, uint32_t nr_vcpus, uint32_t ring_bytes, UniqueFd *session);

class KernelRingSink : public LogSink {
public:
	// session: a session fd from AttachKernelCapture (kept open here).
	static Status Create(UniqueFd session, uint64_t stall_limit_ns,
			     std::unique_ptr<KernelRingSink> *out);
	Status Append(void *rec, uint32_t len) override;
	Status Flush() override { return Status::Ok(); }
	uint64_t tag() const override;
	// ctl->ack_pos as ftlogd published it.
	uint64_t Ack() const;
	int session_fd() const { return session_.get(); }
	uint64_t stalls() const { return stalls_.load(); }	// Appends that waited

private:
	KernelRingSink() = default;
	Status AppendRaw(void *rec, uint32_t len);
	UniqueFd session_;
	RingSet rings_;
	uint64_t limit_ns_ = 0;
	std::atomic<uint64_t> stalls_{0};
};

} // namespace kvmft::vmm
