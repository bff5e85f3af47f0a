// kernel_sink.cc - FT log through kvm_ft.ko's ring (kernel_sink.h).
#include "ftlog/kernel_sink.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <ctime>
#include <fmt/format.h>
#include <linux/kvm_ft.h>
#include <linux/kvm_ft_vmm.h>

#include "base/clock.h"

namespace kvmft::vmm {

bool KernelCaptureAvailable()
{
	return access(KVM_FT_DEVICE, F_OK) == 0;
}

Status AttachKernelCapture(int vm_fd, uint32_t nr_vcpus, uint32_t ring_bytes, UniqueFd *session)
{
	UniqueFd dev(open(KVM_FT_DEVICE, O_RDWR | O_CLOEXEC));
	if (!dev.valid())
		return Status::Errno(KVM_FT_DEVICE);
	kvm_ft_info info{};
	if (ioctl(dev.get(), KVM_FT_GET_INFO, &info) < 0)
		return Status::Errno("KVM_FT_GET_INFO");
	if (!(info.features & KVM_FT_FEAT_APPEND))
		return Status::Error(EOPNOTSUPP, "kvm_ft.ko cannot take VMM records "
						 "(no KVM_FT_FEAT_APPEND): load a newer module");
	kvm_ft_attach a{};
	a.vm_fd = vm_fd;
	a.nr_vcpus = nr_vcpus;
	a.ring_bytes = ring_bytes;
	int fd = ioctl(dev.get(), KVM_FT_ATTACH, &a);
	if (fd < 0)
		return Status::Errno("KVM_FT_ATTACH");
	session->reset(fd);
	return Status::Ok();
}

Status KernelRingSink::Create(UniqueFd session, uint64_t stall_limit_ns,
			      std::unique_ptr<KernelRingSink> *out)
{
	std::unique_ptr<KernelRingSink> k(new KernelRingSink());
	Status s = RingSet::MapSession(session.get(), &k->rings_);
	if (!s.ok())
		return s.Wrap("kvm_ft session");
	k->session_ = std::move(session);
	k->limit_ns_ = stall_limit_ns;
	*out = std::move(k);
	return Status::Ok();
}

Status KernelRingSink::Append(void *rec, uint32_t len)
{
	// The module takes VMM types only: our PIO/MMIO records go as
	// VMM_WRAP_FIRST + type (kvm_ft_vmm.h), unwrapped by RingSource.
	auto *h = static_cast<kvm_ft_rec_hdr *>(rec);
	uint16_t type = h->type;
	if (type < KVM_FT_REC_VMM_FIRST) {
		if (type > KVM_FT_REC_VMM_WRAP_LAST - KVM_FT_REC_VMM_WRAP_FIRST)
			return Status::Error(EINVAL, fmt::format("record type {:#x} cannot "
								 "go to a kvm_ft ring", type));
		h->type = static_cast<uint16_t>(KVM_FT_REC_VMM_WRAP_FIRST + type);
	}
	Status s = AppendRaw(rec, len);
	h->type = type;
	return s;
}

Status KernelRingSink::AppendRaw(void *rec, uint32_t len)
{
	kvm_ft_append a{};
	a.vcpu = 0;
	a.len = len;
	a.rec = reinterpret_cast<uintptr_t>(rec);
	uint64_t t0 = 0;
	while (ioctl(session_.get(), KVM_FT_APPEND, &a) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return Status::Errno(fmt::format("KVM_FT_APPEND of a {}-byte record", len));
		// Full: ftlogd frees space when the peer ACKs; the kernel is
		// not told, so poll the space like RingSink does.
		if (!t0) {
			stalls_++;
			t0 = MonotonicNs();
		} else if (MonotonicNs() - t0 > limit_ns_) {
			return Status::Error(ETIMEDOUT, "kvm_ft log ring full: its consumer "
							"stopped acknowledging");
		}
		timespec ts{0, 20000};
		nanosleep(&ts, nullptr);
	}
	return Status::Ok();
}

uint64_t KernelRingSink::tag() const
{
	// After our append returned, producer_pos covers our record (and
	// perhaps later probe records: a later tag only holds an output
	// a little longer).
	return __atomic_load_n(&rings_.ring(0).prod->producer_pos, __ATOMIC_ACQUIRE);
}

uint64_t KernelRingSink::Ack() const
{
	// Acquire: pairs with ftlogd's release store of ack_pos.
	return __atomic_load_n(&rings_.ring(0).ctl->ack_pos, __ATOMIC_ACQUIRE);
}

} // namespace kvmft::vmm
