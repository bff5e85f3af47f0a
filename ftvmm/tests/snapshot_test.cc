// snapshot_test.cc - a full snapshot plus a chain of deltas, applied to a
// fresh VM, is bit-identical to the source at that point, and the
// restored VM finishes exactly as the source does.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>

#include "checkpoint/checkpoint.h"
#include "guest_run.h"

using namespace kvmft;
using namespace kvmft::vmm;
using namespace kvmft::vmm::test;

namespace {
// Writes one checkpoint file of the source engine's VM.
uint64_t Save(Booted &b, RecordReplay &e, const std::string &path, uint32_t kind, uint64_t parent)
{
	auto hdr = MakeFileHeader(kind == KVM_FT_CKPT_FULL ? KVM_FT_FILE_SNAPSHOT
							   : KVM_FT_FILE_DELTA,
				  b.m->vm().mem_bytes(), b.image_hash, parent);
	std::unique_ptr<LogWriter> w;
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	CkptStats st;
	REQUIRE_OK(WriteCheckpoint(*b.m, e.state(), w.get(), kind, e.pos(), 0, &st));
	REQUIRE_OK(w->Flush());
	return hdr.id;
}

void Apply(Booted &b, RecordReplay &e, const std::string &path)
{
	LogReader r;
	REQUIRE_OK(LogReader::Open(path, &r));
	const kvm_ft_rec_hdr *h;
	REQUIRE_OK(r.Next(&h));
	REQUIRE(h);
	FileSource src(&r);
	CkptStats st;
	Status s = ApplyCheckpoint(*b.m, e.state(), h, &src, &st);
	INFO(s.msg());
	REQUIRE_OK(s);
}

void CheckSameCpu(Vm &a, Vm &b)
{
	REQUIRE_OK(a.Settle());
	REQUIRE_OK(b.Settle());
	kvm_regs ra, rb;
	kvm_sregs sa, sb;
	REQUIRE(ioctl(a.vcpu_fd(), KVM_GET_REGS, &ra) == 0);
	REQUIRE(ioctl(b.vcpu_fd(), KVM_GET_REGS, &rb) == 0);
	REQUIRE(ioctl(a.vcpu_fd(), KVM_GET_SREGS, &sa) == 0);
	REQUIRE(ioctl(b.vcpu_fd(), KVM_GET_SREGS, &sb) == 0);
	CHECK(memcmp(&ra, &rb, sizeof(ra)) == 0);
	CHECK(memcmp(&sa, &sb, sizeof(sa)) == 0);
}
} // namespace

TEST_CASE("snapshot + delta chain restores a bit-identical VM")
{
	RequireKvm();
	auto guest = GENERATE(as<std::string>{}, "compute", "dirtier");
	INFO(guest);
	Booted src;
	REQUIRE_OK(Boot(guest, true, &src));
	RecordReplay es(src.m.get());
	std::vector<std::string> files;
	uint64_t parent = 0;
	int status = 0;
	uint64_t stops[] = {20, 40, 55, 60};
	for (size_t i = 0; i < 4; i++) {
		REQUIRE_OK(es.RunUntil(&status, stops[i]));
		REQUIRE(status == -1);
		files.push_back(TempPath(guest + ".snap." + std::to_string(i)));
		parent = Save(src, es, files.back(), i ? KVM_FT_CKPT_DELTA : KVM_FT_CKPT_FULL,
			      parent);
	}
	std::string prefix = src.Output();

	Booted dst;
	REQUIRE_OK(Boot(guest, true, &dst));
	RecordReplay ed(dst.m.get());
	for (auto &f : files)
		Apply(dst, ed, f);
	CHECK(ed.pos() == es.pos());
	CHECK(memcmp(src.m->vm().mem(), dst.m->vm().mem(), src.m->vm().mem_bytes()) == 0);
	CheckSameCpu(src.m->vm(), dst.m->vm());

	if (guest == "compute") {	// no timer: the continuation is exact
		int s1 = 0, s2 = 0;
		REQUIRE_OK(es.Run(&s1));
		REQUIRE_OK(ed.Run(&s2));
		CHECK(s1 == 1);
		CHECK(s2 == s1);
		CHECK(src.Output() == prefix + dst.Output());
		CHECK(src.m->vm().MemHash() == dst.m->vm().MemHash());
	}
	for (auto &f : files)
		unlink(f.c_str());
}
