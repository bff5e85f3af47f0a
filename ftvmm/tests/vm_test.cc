// vm_test.cc - micro-guests on /dev/kvm: the entry state and the exact
// sequence of exits of a few bytes of code, and the engine's error paths.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>

#include "hw/exits.h"
#include "guest_run.h"
#include "vm/loader.h"

using namespace kvmft;
using namespace kvmft::vmm;
using namespace kvmft::vmm::test;

namespace {
struct Micro {
	std::unique_ptr<Machine> m;
	int fd = -1;
	Micro(const std::vector<uint8_t> &code, uint64_t mem = 16 << 20)
	{
		RequireKvm();
		fd = memfd_create("console", MFD_CLOEXEC);
		MachineConfig cfg;
		cfg.mem_bytes = mem;
		cfg.console_fd = fd;
		REQUIRE_OK(Machine::Create(std::move(cfg), &m));
		Image img{code, 0};
		uint64_t entry;
		REQUIRE_OK(LoadFlat(img, m->vm().mem(), mem, &entry));
		REQUIRE_OK(m->vm().SetEntryState(entry));
	}
	~Micro()
	{
		m.reset();
		close(fd);
	}
	// One KVM_RUN; returns the exit reason (I/O done against the bus).
	uint32_t Step()
	{
		REQUIRE(ioctl(m->vm().vcpu_fd(), KVM_RUN, 0) == 0);
		kvm_run *r = m->vm().run();
		if (r->exit_reason == KVM_EXIT_IO)
			DoPortIo(r, &m->pio());
		return r->exit_reason;
	}
	uint32_t OutValue()
	{
		uint32_t v = 0;
		memcpy(&v, IoData(m->vm().run()), m->vm().run()->io.size);
		return v;
	}
};
} // namespace

TEST_CASE("entry state: long mode, paging, NX, SSE, stack and RDI")
{
	// mov %cr0,%rax; out %eax,$0x90; mov %cr4,%rax; out %eax,$0x90;
	// mov $0xc0000080,%ecx; rdmsr; out %eax,$0x90; mov %rsp,%rax;
	// out %eax,$0x90; mov %rdi,%rax; out %eax,$0x90; in $0x71,%al;
	// mov $0x3f8,%dx; mov $'A',%al; out %al,(%dx); mov $0x2a,%bl; hlt
	Micro g({0x0f, 0x20, 0xc0, 0xe7, 0x90, 0x0f, 0x20, 0xe0, 0xe7, 0x90,
		 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0xe7, 0x90,
		 0x48, 0x89, 0xe0, 0xe7, 0x90, 0x48, 0x89, 0xf8, 0xe7, 0x90,
		 0xe4, 0x71, 0x66, 0xba, 0xf8, 0x03, 0xb0, 0x41, 0xee,
		 0xb3, 0x2a, 0xf4});
	const uint64_t mem = 16 << 20;
	uint32_t want[] = {0x80010033, 0x620, 0xd00, uint32_t(mem - 4096), uint32_t(mem)};
	for (uint32_t w : want) {
		REQUIRE(g.Step() == KVM_EXIT_IO);
		CHECK(g.m->vm().run()->io.port == 0x90);
		CHECK(g.m->vm().run()->io.direction == KVM_EXIT_IO_OUT);
		CHECK(g.OutValue() == w);
	}
	REQUIRE(g.Step() == KVM_EXIT_IO);
	CHECK(g.m->vm().run()->io.port == 0x71);
	CHECK(g.m->vm().run()->io.direction == KVM_EXIT_IO_IN);
	REQUIRE(g.Step() == KVM_EXIT_IO);
	CHECK(g.m->vm().run()->io.port == 0x3f8);
	CHECK(g.OutValue() == 'A');
	REQUIRE(g.Step() == KVM_EXIT_HLT);
	kvm_regs regs;
	REQUIRE(ioctl(g.m->vm().vcpu_fd(), KVM_GET_REGS, &regs) == 0);
	CHECK((regs.rbx & 0xff) == 0x2a);
	CHECK(regs.rip == kFlatBase + 41);
	g.m->console().Flush();
	char c = 0;
	CHECK(pread(g.fd, &c, 1, 0) == 1);
	CHECK(c == 'A');
	const uint64_t *gdt = reinterpret_cast<const uint64_t *>(g.m->vm().mem() + kGdtAddr);
	CHECK(gdt[1] == 0x00af9b000000ffffULL);
	CHECK(gdt[2] == 0x00cf93000000ffffULL);
}

TEST_CASE("engine: exit port status, and positions count only guest exits")
{
	// out %al,$0x80 twice; mov $0x21,%al; mov $0x501,%dx; out %al,(%dx)
	Micro g({0xe6, 0x80, 0xe6, 0x80, 0xb0, 0x21, 0x66, 0xba, 0x01, 0x05, 0xee});
	RecordReplay e(g.m.get());
	int status = 0;
	REQUIRE_OK(e.Run(&status));
	CHECK(status == 0x43);
	CHECK(e.pos() == 3);
	CHECK(e.stats().positions == 3);
}

TEST_CASE("engine: a guest halting with interrupts off is an error, not a hang")
{
	Micro g({0xf4});	// hlt (RFLAGS.IF = 0 at entry)
	RecordReplay e(g.m.get());
	int status = 0;
	Status s = e.Run(&status);
	CHECK(s.err() == EFAULT);
	CHECK(s.msg().find("interrupts disabled") != std::string::npos);
}

TEST_CASE("engine: a triple fault is reported with its position")
{
	Micro g({0xe6, 0x80, 0x0f, 0x0b});	// out; ud2 with no IDT
	RecordReplay e(g.m.get());
	int status = 0;
	Status s = e.Run(&status);
	CHECK(s.err() == EFAULT);
	CHECK(s.msg().find("triple fault") != std::string::npos);
	CHECK(s.msg().find("position 1") != std::string::npos);
}
