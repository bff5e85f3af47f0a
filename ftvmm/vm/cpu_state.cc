// cpu_state.cc - vCPU state save and load (cpu_state.h).
#include "vm/cpu_state.h"

#include <sys/ioctl.h>

#include <cstring>
#include <fmt/format.h>

#include "vm/kvm_abi.h"

namespace kvmft::vmm {

namespace {
constexpr size_t Align8(size_t n) { return (n + 7) & ~size_t{7}; }

struct Part {
	unsigned long get, set;
	const char *name;
	size_t size;
};

const Part kParts[] = {
	{KVM_GET_REGS, KVM_SET_REGS, "regs", sizeof(kvm_regs)},
	{KVM_GET_SREGS, KVM_SET_SREGS, "sregs", sizeof(kvm_sregs)},
	{KVM_GET_XCRS, KVM_SET_XCRS, "xcrs", sizeof(kvm_xcrs)},
	{KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, "vcpu events", sizeof(kvm_vcpu_events)},
	{KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, "debugregs", sizeof(kvm_debugregs)},
};

size_t RecordBytes(size_t nmsrs)
{
	size_t n = sizeof(kvm_ft_vmm_cpu);
	for (const Part &p : kParts)
		n += Align8(p.size);
	return n + KVMABI_XSAVE_BYTES + nmsrs * sizeof(kvm_msr_entry);
}
} // namespace

Status SaveCpu(Vm &vm, std::vector<uint8_t> *rec, unsigned vcpu)
{
	const int fd = vm.vcpu_fd(vcpu);
	const auto &idx = vm.msrs();
	rec->assign(RecordBytes(idx.size()), 0);
	auto *c = reinterpret_cast<kvm_ft_vmm_cpu *>(rec->data());
	c->hdr.type = KVM_FT_REC_VMM_CKPT_CPU;
	c->hdr.len = static_cast<uint32_t>(rec->size());
	c->regs_bytes = sizeof(kvm_regs);
	c->sregs_bytes = sizeof(kvm_sregs);
	c->xcrs_bytes = sizeof(kvm_xcrs);
	c->events_bytes = sizeof(kvm_vcpu_events);
	c->debugregs_bytes = sizeof(kvm_debugregs);
	c->xsave_bytes = KVMABI_XSAVE_BYTES;
	c->nr_msrs = static_cast<uint32_t>(idx.size());
	size_t off = sizeof(*c);
	for (const Part &p : kParts) {
		if (ioctl(fd, p.get, rec->data() + off) < 0)
			return Status::Errno(fmt::format("save vCPU {}", p.name));
		off += Align8(p.size);
	}
	int r = kvmabi_get_xsave(fd, rec->data() + off);
	if (r < 0)
		return Status::Errno("save vCPU xsave", -r);
	off += KVMABI_XSAVE_BYTES;
	std::vector<uint64_t> val(idx.size());
	r = kvmabi_get_msrs(fd, idx.size(), idx.data(), val.data());
	if (r != static_cast<int>(idx.size()))
		return Status::Errno(fmt::format("save vCPU MSRs ({} of {})", r, idx.size()),
				     r < 0 ? -r : EIO);
	for (size_t i = 0; i < idx.size(); i++) {
		kvm_msr_entry e{};
		e.index = idx[i];
		e.data = val[i];
		memcpy(rec->data() + off + i * sizeof(e), &e, sizeof(e));
	}
	return Status::Ok();
}

Status LoadCpu(Vm &vm, const kvm_ft_rec_hdr *rec, unsigned vcpu)
{
	const int fd = vm.vcpu_fd(vcpu);
	const auto *c = reinterpret_cast<const kvm_ft_vmm_cpu *>(rec);
	if (rec->len < sizeof(*c))
		return Status::Error(EINVAL, "CKPT_CPU: record too short");
	if (c->regs_bytes != sizeof(kvm_regs) || c->sregs_bytes != sizeof(kvm_sregs) ||
	    c->xcrs_bytes != sizeof(kvm_xcrs) || c->events_bytes != sizeof(kvm_vcpu_events) ||
	    c->debugregs_bytes != sizeof(kvm_debugregs) || c->xsave_bytes != KVMABI_XSAVE_BYTES ||
	    c->reserved || c->nr_msrs > 64 || rec->len != RecordBytes(c->nr_msrs))
		return Status::Error(EINVAL, "CKPT_CPU: sizes do not match this VMM's KVM structs");
	const uint8_t *base = reinterpret_cast<const uint8_t *>(rec);
	size_t off = sizeof(*c);
	// Aligned copies: the record may sit anywhere in a buffer.
	std::vector<uint64_t> buf(KVMABI_XSAVE_BYTES / 8);
	for (const Part &p : kParts) {
		memcpy(buf.data(), base + off, p.size);
		if (ioctl(fd, p.set, buf.data()) < 0)
			return Status::Errno(fmt::format("load vCPU {}", p.name));
		off += Align8(p.size);
	}
	memcpy(buf.data(), base + off, KVMABI_XSAVE_BYTES);
	int r = kvmabi_set_xsave(fd, buf.data());
	if (r < 0)
		return Status::Errno("load vCPU xsave", -r);
	off += KVMABI_XSAVE_BYTES;
	std::vector<uint32_t> idx(c->nr_msrs);
	std::vector<uint64_t> val(c->nr_msrs);
	for (size_t i = 0; i < idx.size(); i++) {
		kvm_msr_entry e;
		memcpy(&e, base + off + i * sizeof(e), sizeof(e));
		idx[i] = e.index;
		val[i] = e.data;
	}
	r = kvmabi_set_msrs(fd, idx.size(), idx.data(), val.data());
	if (r != static_cast<int>(idx.size()))
		return Status::Errno(fmt::format("load vCPU MSRs ({} of {})", r, idx.size()),
				     r < 0 ? -r : EIO);
	return Status::Ok();
}

} // namespace kvmft::vmm
