// vm.cc - KVM VM, RAM and vCPU setup (vm.h).
#include "vm/vm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "vm/kvm_abi.h"

namespace kvmft::vmm {

namespace {
constexpr uint64_t kPteP = 1, kPteRw = 2, kPteUs = 4, kPtePs = 0x80;
constexpr uint64_t kCr0Pe = 1, kCr0Mp = 2, kCr0Et = 0x10, kCr0Ne = 0x20;
constexpr uint64_t kCr0Wp = 1 << 16, kCr0Pg = 1ULL << 31;
constexpr uint64_t kCr4Pae = 0x20, kCr4Osfxsr = 0x200, kCr4Osxmmexcpt = 0x400;
constexpr uint64_t kEferLme = 0x100, kEferLma = 0x400, kEferNxe = 0x800;

const uint32_t kMsrCandidates[] = {
	0x10,	      // IA32_TSC
	0x174, 0x175, 0x176, // SYSENTER_CS/ESP/EIP
	0x277,	      // PAT
	0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, // STAR, LSTAR, CSTAR, SFMASK
	0xc0000102,   // KERNEL_GS_BASE
	0xc0000103,   // TSC_AUX
};

kvm_segment Seg(uint16_t sel, uint8_t type, bool code)
{
	kvm_segment s{};
	s.base = 0;
	s.limit = 0xffffffff;
	s.selector = sel;
	s.type = type;
	s.present = 1;
	s.s = 1;
	s.g = 1;
	s.l = code;
	s.db = !code;
	return s;
}
} // namespace

Vm::~Vm()
{
	for (kvm_run *r : runs_)
		munmap(r, run_size_);
	if (mem_)
		munmap(mem_, mem_bytes_);
}

Status Vm::Create(uint64_t mem_bytes, bool dirty_log, std::unique_ptr<Vm> *out,
		  unsigned vcpus)
{
	if (vcpus < 1 || vcpus > kMaxVcpus)
		return Status::Error(EINVAL, fmt::format("{} vCPUs: 1 to {} are supported",
							 vcpus, kMaxVcpus));
	if (mem_bytes < kMinMem || mem_bytes > kMaxMem || mem_bytes % kPageSize)
		return Status::Error(EINVAL, fmt::format(
			"memory size {:#x}: must be a multiple of 4 KiB in [2 MiB, 3 GiB]",
			mem_bytes));
	auto vm = std::unique_ptr<Vm>(new Vm());
	vm->kvm_.reset(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
	if (!vm->kvm_.valid())
		return Status::Errno("open /dev/kvm");
	vm->vm_.reset(ioctl(vm->kvm_.get(), KVM_CREATE_VM, 0));
	if (!vm->vm_.valid())
		return Status::Errno("KVM_CREATE_VM");
	ioctl(vm->vm_.get(), KVM_SET_TSS_ADDR, 0xfffbd000UL);
	void *m = mmap(nullptr, mem_bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return Status::Errno(fmt::format("mmap {} bytes of guest RAM", mem_bytes));
	vm->mem_ = static_cast<uint8_t *>(m);
	vm->mem_bytes_ = mem_bytes;
	vm->dirty_log_ = dirty_log;
	kvm_userspace_memory_region r{};
	r.slot = 0;
	r.flags = dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0;
	r.guest_phys_addr = 0;
	r.memory_size = mem_bytes;
	r.userspace_addr = reinterpret_cast<uint64_t>(m);
	if (ioctl(vm->vm_.get(), KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return Status::Errno("KVM_SET_USER_MEMORY_REGION");
	int sz = ioctl(vm->kvm_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < static_cast<int>(sizeof(kvm_run)))
		return Status::Errno("KVM_GET_VCPU_MMAP_SIZE");
	vm->run_size_ = sz;
	for (unsigned i = 0; i < vcpus; i++) {
		UniqueFd fd(ioctl(vm->vm_.get(), KVM_CREATE_VCPU, i));
		if (!fd.valid())
			return Status::Errno(fmt::format("KVM_CREATE_VCPU {}", i));
		void *run = mmap(nullptr, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
		if (run == MAP_FAILED)
			return Status::Errno("mmap kvm_run");
		vm->vcpus_.push_back(std::move(fd));
		vm->runs_.push_back(static_cast<kvm_run *>(run));
	}
	Status s = vm->SetupCpuid();
	if (!s.ok())
		return s;
	vm->ProbeMsrs();
	*out = std::move(vm);
	return Status::Ok();
}

Status Vm::SetupCpuid()
{
	for (const UniqueFd &fd : vcpus_) {
		int r = kvmabi_setup_cpuid(kvm_.get(), fd.get());
		if (r < 0)
			return Status::Errno("set up CPUID (KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2)",
					     -r);
	}
	return Status::Ok();
}

void Vm::ProbeMsrs()
{
	for (uint32_t idx : kMsrCandidates) {
		uint64_t v;
		if (kvmabi_get_msrs(vcpu_fd(), 1, &idx, &v) == 1)
			msrs_.push_back(idx);
	}
}

Status Vm::SetEntryState(uint64_t entry)
{
	uint64_t gdt[3] = {0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL};
	memcpy(mem_ + kGdtAddr, gdt, sizeof(gdt));
	auto *pml4 = reinterpret_cast<uint64_t *>(mem_ + kPml4Addr);
	auto *pdpt = reinterpret_cast<uint64_t *>(mem_ + kPml4Addr + 0x1000);
	auto *pd = reinterpret_cast<uint64_t *>(mem_ + kPml4Addr + 0x2000);
	uint64_t flags = kPteP | kPteRw | kPteUs;
	pml4[0] = (kPml4Addr + 0x1000) | flags;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (kPml4Addr + 0x2000 + i * 0x1000) | flags;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | flags | kPtePs;

	for (unsigned i = 0; i < nr_vcpus(); i++) {
		Status s = SetVcpuEntry(i, entry, sizeof(gdt));
		if (!s.ok())
			return s;
	}
	return Status::Ok();
}

Status Vm::SetVcpuEntry(unsigned i, uint64_t entry, size_t gdt_bytes)
{
	int fd = vcpu_fd(i);
	kvm_sregs sregs;
	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return Status::Errno("KVM_GET_SREGS");
	sregs.cs = Seg(0x08, 0xb, true);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = Seg(0x10, 0x3, false);
	sregs.tr = Seg(0, 0xb, false);
	sregs.tr.s = 0;
	sregs.tr.g = 0;
	sregs.tr.limit = 0x67;
	sregs.gdt.base = kGdtAddr;
	sregs.gdt.limit = gdt_bytes - 1;
	sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Pg;
	sregs.cr3 = kPml4Addr;
	sregs.cr4 = kCr4Pae | kCr4Osfxsr | kCr4Osxmmexcpt;
	sregs.efer = kEferLme | kEferLma | kEferNxe;
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		return Status::Errno("KVM_SET_SREGS");

	kvm_fpu fpu{};
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(fd, KVM_SET_FPU, &fpu) < 0)
		return Status::Errno("KVM_SET_FPU");

	kvm_regs regs{};
	regs.rip = entry;
	regs.rflags = 0x2;
	regs.rsp = mem_bytes_ - kPageSize - i * kVcpuStack;
	regs.rdi = mem_bytes_;
	regs.rsi = i;
	regs.rdx = nr_vcpus();
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return Status::Errno("KVM_SET_REGS");
	return Status::Ok();
}

Status Vm::Inject(uint32_t vector)
{
	kvm_interrupt irq{vector};
	if (ioctl(vcpu_fd(), KVM_INTERRUPT, &irq) < 0)
		return Status::Errno(fmt::format("KVM_INTERRUPT vector {:#x}", vector));
	return Status::Ok();
}

Status Vm::Settle(unsigned i)
{
	kvm_run *run = runs_[i];
	run->immediate_exit = 1;
	int r = ioctl(vcpu_fd(i), KVM_RUN, 0);
	int err = errno;
	run->immediate_exit = 0;
	if (r == 0 || err == EINTR)
		return Status::Ok();
	return Status::Errno("KVM_RUN (settle)", err);
}

Status Vm::FetchDirty(std::vector<uint64_t> *bitmap)
{
	if (!dirty_log_)
		return Status::Error(EINVAL, "dirty log not enabled on this VM");
	bitmap->assign((mem_bytes_ / kPageSize + 63) / 64, 0);
	kvm_dirty_log d{};
	d.slot = 0;
	d.dirty_bitmap = bitmap->data();
	if (ioctl(vm_.get(), KVM_GET_DIRTY_LOG, &d) < 0)
		return Status::Errno("KVM_GET_DIRTY_LOG");
	for (size_t i = 0; i < vmm_dirty_.size(); i++)
		(*bitmap)[i] |= vmm_dirty_[i];
	vmm_dirty_.clear();
	return Status::Ok();
}

Status Vm::EnableDirtyLog()
{
	if (dirty_log_)
		return Status::Ok();
	kvm_userspace_memory_region r{};
	r.slot = 0;
	r.flags = KVM_MEM_LOG_DIRTY_PAGES;
	r.guest_phys_addr = 0;
	r.memory_size = mem_bytes_;
	r.userspace_addr = reinterpret_cast<uint64_t>(mem_);
	if (ioctl(vm_.get(), KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return Status::Errno("KVM_SET_USER_MEMORY_REGION (dirty log on)");
	dirty_log_ = true;
	vmm_dirty_.clear();
	return Status::Ok();
}

void Vm::MarkDirty(uint64_t gpa, uint64_t len)
{
	if (!dirty_log_ || !len || gpa >= mem_bytes_)
		return;
	if (vmm_dirty_.empty())
		vmm_dirty_.assign((mem_bytes_ / kPageSize + 63) / 64, 0);
	uint64_t last = std::min(gpa + len, mem_bytes_) - 1;
	for (uint64_t pg = gpa / kPageSize; pg <= last / kPageSize; pg++)
		vmm_dirty_[pg / 64] |= 1ULL << (pg % 64);
}

uint64_t Vm::MemHash() const
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const auto *w = reinterpret_cast<const uint64_t *>(mem_);
	for (uint64_t i = 0; i < mem_bytes_ / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ULL;
	return h;
}

} // namespace kvmft::vmm
