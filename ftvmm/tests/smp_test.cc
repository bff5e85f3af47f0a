// smp_test.cc - SMP guests, epochs of checkpoints and their replay
// (ftvmm/smp.h). The worker guest is FTVMM_SMP_GUEST (default "smp";
// the TCG rig uses "smp_small").
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <regex>

#include "guest_run.h"
#include "ftlog/file.h"
#include "epoch/epochs.h"

extern "C" {
#include "../guests/smp_job.h"
}

using namespace kvmft;
using namespace kvmft::vmm;
using namespace kvmft::vmm::test;

namespace {

std::string SmpGuest()
{
	const char *g = getenv("FTVMM_SMP_GUEST");
	return g && *g ? g : "smp";
}

// The worker's final line for `rounds` rounds, computed here.
std::string Expected(unsigned long rounds)
{
	std::vector<unsigned long> blk(SMP_BLOCK_WORDS);
	unsigned long sum = 0, xr = 0, count = 0;
	for (unsigned long r = 0; r < rounds; r++)
		for (unsigned long b = 0; b < SMP_BLOCKS; b++) {
			unsigned long h = smp_fill_hash(blk.data(), r, b);
			sum += h;
			xr ^= h;
			count++;
		}
	return fmt::format("smp: blocks {} result {:#018x}\n", count, smp_result(sum, xr, count));
}

unsigned long Rounds(const std::string &out)
{
	std::smatch m;
	REQUIRE(std::regex_search(out, m, std::regex("vcpus, ([0-9]+) rounds")));
	return std::stoul(m[1]);
}

std::string LastLine(const std::string &out)
{
	size_t p = out.rfind('\n', out.size() - 2);
	return out.substr(p == std::string::npos ? 0 : p + 1);
}

struct SmpRun {
	Status s;
	int status = -2;
	std::string out;
	uint64_t mem_hash = 0;
	EpochStats st;
};

SmpRun RunSmp(unsigned n, LogSink *sink, std::function<uint64_t()> ack = {},
	      uint64_t hold_timeout_ns = 10000000000ULL)
{
	SmpRun r;
	Booted b;
	r.s = Boot(SmpGuest(), sink != nullptr, &b, 64ULL << 20, "", n);
	if (!r.s.ok())
		return r;
	ModeConfig cfg;
	cfg.hash_epochs = true;
	cfg.epoch_ns = 10000000;
	cfg.hold_timeout_ns = hold_timeout_ns;
	Epochs smp(b.m.get(), cfg);
	smp.SetRecord(sink);
	if (ack)
		smp.SetAck(ack);
	r.s = smp.Run(&r.status);
	r.out = b.Output();
	r.mem_hash = b.m->vm().MemHash();
	r.st = smp.stats();
	return r;
}

std::unique_ptr<LogWriter> NewLog(const std::string &path, unsigned n)
{
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, 64ULL << 20, 0, 0);
	hdr.nr_vcpus = n;
	std::unique_ptr<LogWriter> w;
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	return w;
}

// Replays log bytes on a fresh n-vCPU machine; with go_live runs on.
SmpRun Replay(unsigned n, std::vector<uint8_t> bytes, bool go_live)
{
	SmpRun r;
	LogReader rd;
	r.s = LogReader::FromBytes(std::move(bytes), "log", &rd);
	if (!r.s.ok())
		return r;
	rd.set_allow_torn_tail(go_live);
	FileSource src(&rd);
	Booted b;
	if (!(r.s = Boot(SmpGuest(), false, &b, 64ULL << 20, "", n)).ok())
		return r;
	Epochs smp(b.m.get(), ModeConfig{});
	r.s = smp.ApplyLog(&src, &r.status);
	r.mem_hash = b.m->vm().MemHash();
	if (r.s.ok() && go_live && !smp.stats().ended)
		r.s = smp.Run(&r.status);
	r.out = b.Output();
	r.st = smp.stats();
	return r;
}

} // namespace

TEST_CASE("smp worker: same result with 1, 2 and 4 vCPUs, as computed here", "[smp]")
{
	RequireKvm();
	GuestRun one = RecordGuest(SmpGuest(), "");
	REQUIRE_OK(one.s);
	REQUIRE(one.status == 1);
	const std::string want = Expected(Rounds(one.out));
	CHECK(LastLine(one.out) == want);
	for (unsigned n : {2u, 4u}) {
		SmpRun r = RunSmp(n, nullptr);
		INFO(r.s.msg() << "\n" << r.out);
		REQUIRE_OK(r.s);
		CHECK(r.status == 1);
		CHECK(r.out.find(fmt::format("smp: {} vcpus", n)) == 0);
		CHECK(LastLine(r.out) == want);
	}
}

TEST_CASE("smp record: replay applies every epoch, memory as on the primary", "[smp]")
{
	RequireKvm();
	for (unsigned n : {2u, 4u}) {
		std::string path = TempPath(fmt::format("smp{}.log", n));
		SmpRun p;
		{
			auto w = NewLog(path, n);
			p = RunSmp(n, w.get());
		}
		REQUIRE_OK(p.s);
		REQUIRE(p.st.epochs >= 2);
		SmpRun r = Replay(n, ReadFile(path), false);
		INFO(r.s.msg());
		REQUIRE_OK(r.s);
		CHECK(r.st.ended);
		CHECK(r.status == p.status);
		CHECK(r.st.applied == p.st.epochs);
		CHECK(r.mem_hash == p.mem_hash);
		CHECK(r.st.console_bytes == p.out.size());
		// Each epoch carries its console bytes: the replay prints
		// what the primary printed.
		CHECK(r.out == p.out);

		// A tampered page of a later epoch: EPROTO at that epoch.
		std::vector<uint8_t> log = ReadFile(path);
		auto frames = Frames(log);
		const FrameRef *victim = nullptr;
		for (const FrameRef &f : frames)
			if (f.rec->type == KVM_FT_REC_VMM_CKPT_PAGE && f.rec->pos == 1) {
				victim = &f;
				break;
			}
		REQUIRE(victim);
		reinterpret_cast<uint8_t *>(victim->rec)[sizeof(kvm_ft_vmm_page) + 100] ^= 0x5a;
		FixCrc(log, *victim);
		SmpRun t = Replay(n, log, false);
		CHECK(t.s.err() == EPROTO);
		CHECK(t.s.msg().find("epoch 1 ") != std::string::npos);
		CHECK(t.st.applied == 1);

		// A console DATA record that lost a byte (CRC fixed): the
		// epoch's count disagrees, an error at that epoch.
		log = ReadFile(path);
		frames = Frames(log);
		const FrameRef *data = nullptr;
		for (const FrameRef &f : frames)
			if (f.rec->type == KVM_FT_REC_VMM_DATA && f.rec->pos >= 1 &&
			    reinterpret_cast<kvm_ft_vmm_data *>(f.rec)->bytes > 0) {
				data = &f;
				break;
			}
		REQUIRE(data);
		reinterpret_cast<kvm_ft_vmm_data *>(data->rec)->bytes--;
		FixCrc(log, *data);
		SmpRun d = Replay(n, log, false);
		CHECK(d.s.err() == EINVAL);
		CHECK(d.s.msg().find("console bytes") != std::string::npos);
		CHECK(d.st.applied == data->rec->pos);

		// A non-zero reserved field in an EPOCH_END (CRC fixed): that
		// epoch is refused, not applied.
		log = ReadFile(path);
		frames = Frames(log);
		const FrameRef *end = nullptr;
		for (const FrameRef &f : frames)
			if (f.rec->type == KVM_FT_REC_VMM_EPOCH_END && f.rec->pos == 1) {
				end = &f;
				break;
			}
		REQUIRE(end);
		reinterpret_cast<kvm_ft_vmm_epoch *>(end->rec)->reserved = 1;
		FixCrc(log, *end);
		SmpRun e = Replay(n, log, false);
		CHECK(e.s.err() == EINVAL);
		CHECK(e.s.msg().find("epoch 1: EPOCH_END") != std::string::npos);
		CHECK(e.st.applied == 1);

		// The same byte changed without fixing the CRC: a clean error.
		log = ReadFile(path);
		frames = Frames(log);
		log[frames[frames.size() / 2].off + 40] ^= 1;
		SmpRun c = Replay(n, log, false);
		CHECK(!c.s.ok());
		CHECK(c.s.msg().find("CRC") != std::string::npos);

		// Truncated without go-live: stops at the last complete epoch.
		log = ReadFile(path);
		log.resize(log.size() / 2 + 3);
		SmpRun tr = Replay(n, log, false);
		CHECK(!tr.s.ok());
		unlink(path.c_str());
	}
}

TEST_CASE("smp go-live from cut logs: the secondary prints every console byte once", "[smp]")
{
	RequireKvm();
	const unsigned n = 2;
	std::string path = TempPath("smpcut.log");
	SmpRun p;
	{
		auto w = NewLog(path, n);
		p = RunSmp(n, w.get());
	}
	REQUIRE_OK(p.s);
	const std::vector<uint8_t> log = ReadFile(path);
	auto copy = log;
	auto frames = Frames(copy);
	// Cuts: inside a page record of the second epoch, right after an
	// EPOCH_END, and at fractions of the log (mid-frame).
	std::vector<size_t> cuts;
	for (size_t i = 0; i < frames.size(); i++) {
		if (frames[i].rec->type == KVM_FT_REC_VMM_EPOCH_END && frames[i].rec->pos == 1 &&
		    i + 1 < frames.size())
			cuts.push_back(frames[i + 1].off);
		if (frames[i].rec->type == KVM_FT_REC_VMM_CKPT_PAGE && frames[i].rec->pos == 1 &&
		    cuts.empty())
			cuts.push_back(frames[i].off + 100);
	}
	for (int k = 1; k <= 3; k++)
		cuts.push_back(log.size() * k / 4 + 77);
	for (size_t cut : cuts) {
		std::vector<uint8_t> part(log.begin(), log.begin() + cut);
		SmpRun r = Replay(n, part, true);
		INFO("cut at " << cut << ": " << r.s.msg());
		REQUIRE_OK(r.s);
		CHECK(r.status == p.status);
		CHECK(r.st.applied >= 1);
		// The secondary printed the bytes of the epochs it applied
		// (the primary may or may not have released them before it
		// failed), then ran on: nothing lost, nothing twice.
		CHECK(r.out == p.out);
	}
	unlink(path.c_str());
}

TEST_CASE("smp output rule: nothing is printed without an ACK", "[smp]")
{
	RequireKvm();
	std::string path = TempPath("smpack.log");
	{
		auto w = NewLog(path, 2);
		SmpRun r = RunSmp(2, w.get(), [] { return uint64_t{0}; }, 0);
		CHECK(r.s.err() == ETIMEDOUT);
		CHECK(r.out.empty());
	}
	{
		auto w = NewLog(path, 2);
		LogWriter *lw = w.get();
		SmpRun r = RunSmp(2, w.get(), [lw] { return lw->tag(); });
		REQUIRE_OK(r.s);
		CHECK(LastLine(r.out) == Expected(Rounds(r.out)));
	}
	unlink(path.c_str());
}
