// replay_test.cc - record -> replay equality for every test guest with the
// primary's interrupt timing jittered; tampered, truncated and corrupt
// logs; go-live at the end of a truncated log.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <unistd.h>

#include <cstring>

#include "guest_run.h"

using namespace kvmft;
using namespace kvmft::vmm;
using namespace kvmft::vmm::test;

namespace {
ModeConfig Jittered(uint64_t seed)
{
	ModeConfig c;
	c.jitter_ns = 2000000;	// each timer edge up to 2 ms late
	c.seed = seed;
	c.slice_ns = 3000000;
	return c;
}

struct Recorded {
	std::string log;
	GuestRun rec;
	explicit Recorded(const std::string &guest, uint64_t seed = 1)
	{
		RequireKvm();
		log = TempPath(guest + std::to_string(seed) + ".log");
		rec = RecordGuest(guest, log, Jittered(seed));
		INFO(rec.s.msg());
		REQUIRE_OK(rec.s);
		REQUIRE(rec.status == 1);
	}
	~Recorded() { unlink(log.c_str()); }
};
} // namespace

TEST_CASE("replay reproduces every guest exactly, whatever the timer jitter")
{
	auto guest = GENERATE(as<std::string>{}, "compute", "ticker", "rtc", "dirtier");
	auto seed = GENERATE(1, 2, 3);
	INFO(guest << " seed " << seed);
	Recorded r(guest, seed);
	GuestRun rep = ReplayGuest(guest, r.log);
	INFO(rep.s.msg());
	REQUIRE_OK(rep.s);
	CHECK(rep.status == r.rec.status);
	CHECK(rep.out == r.rec.out);
	CHECK(rep.mem_hash == r.rec.mem_hash);
	CHECK(rep.st.positions == r.rec.st.positions);
	CHECK(rep.st.irqs == r.rec.st.irqs);
	CHECK(rep.st.ckpt.count == r.rec.st.ckpt.count);
	if (guest == "dirtier" || guest == "ticker")
		CHECK(r.rec.st.ckpt.count > 0);	// ran without exits: kicked
	if (guest != "compute" && guest != "rtc")
		CHECK(r.rec.st.irqs > 0);
}

TEST_CASE("the ticker's output depends on where ticks land")
{
	Recorded a("ticker", 11), b("ticker", 12);
	CHECK(a.rec.out != b.rec.out);	// so equal replays above mean something
}

TEST_CASE("a tampered exit record is a divergence at its position")
{
	Recorded r("rtc");
	auto log = ReadFile(r.log);
	auto frames = Frames(log);
	uint64_t pos = 0;
	for (auto &f : frames)
		if (f.rec->type == KVM_FT_REC_PIO && f.rec->pos == 20) {
			auto *p = reinterpret_cast<kvm_ft_rec_pio *>(f.rec);
			p->port ^= 1;
			FixCrc(log, f);
			pos = f.rec->pos;
			break;
		}
	REQUIRE(pos == 20);
	WriteFile(r.log, log);
	GuestRun rep = ReplayGuest("rtc", r.log);
	CHECK(rep.s.err() == EPROTO);
	CHECK(rep.s.msg().find("divergence at position 20:") != std::string::npos);
}

TEST_CASE("a non-zero reserved field of an EXIT or END record is refused, not replayed")
{
	Recorded r("rtc");
	const auto clean = ReadFile(r.log);
	for (uint16_t type : {uint16_t(KVM_FT_REC_VMM_EXIT), uint16_t(KVM_FT_REC_VMM_END)}) {
		auto log = clean;
		bool found = false;
		for (auto &f : Frames(log)) {
			if (f.rec->type != type || (type == KVM_FT_REC_VMM_EXIT && f.rec->pos != 20))
				continue;
			if (type == KVM_FT_REC_VMM_EXIT)
				reinterpret_cast<kvm_ft_vmm_exit *>(f.rec)->reserved = 1;
			else
				reinterpret_cast<kvm_ft_vmm_end *>(f.rec)->reserved = 1;
			FixCrc(log, f);
			found = true;
			break;
		}
		REQUIRE(found);
		WriteFile(r.log, log);
		GuestRun rep = ReplayGuest("rtc", r.log);
		INFO(rep.s.msg());
		CHECK(rep.s.err() == EINVAL);
		CHECK(rep.s.msg().find(type == KVM_FT_REC_VMM_EXIT ? "malformed EXIT record at position 20"
								    : "malformed END record") !=
		      std::string::npos);
	}
}

TEST_CASE("a tampered input value diverges where the guest's output changes")
{
	Recorded r("rtc");
	auto log = ReadFile(r.log);
	uint64_t pos = 0;
	for (auto &f : Frames(log)) {
		auto *p = reinterpret_cast<kvm_ft_rec_pio *>(f.rec);
		if (f.rec->type == KVM_FT_REC_PIO && p->port == 0x71 && p->dir == KVM_FT_DIR_IN) {
			p->value ^= 0x01;	// the first RTC reading (seconds)
			FixCrc(log, f);
			pos = f.rec->pos;
			break;
		}
	}
	REQUIRE(pos > 0);
	WriteFile(r.log, log);
	GuestRun rep = ReplayGuest("rtc", r.log);
	CHECK(rep.s.err() == EPROTO);
	auto at = rep.s.msg().find("divergence at position ");
	REQUIRE(at != std::string::npos);
	uint64_t where = std::stoull(rep.s.msg().substr(at + 22));
	CHECK(where > pos);
}

// A recording VM runs without KVM's dirty log until a checkpoint needs
// it: a guest that always exits in time never pays for it; the first
// checkpoint is FULL, the next ones are deltas.
TEST_CASE("recording turns the dirty log on at the first checkpoint, which is FULL")
{
	auto kinds = [](const std::string &guest) {
		Recorded r(guest);
		auto log = ReadFile(r.log);
		std::vector<uint32_t> k;
		for (const FrameRef &f : Frames(log))
			if (f.rec->type == KVM_FT_REC_VMM_CKPT_BEGIN)
				k.push_back(reinterpret_cast<const kvm_ft_vmm_ckpt *>(f.rec)->kind);
		return k;
	};
	CHECK(kinds("compute").empty());
	auto k = kinds("dirtier");
	REQUIRE(k.size() > 2);
	CHECK(k[0] == KVM_FT_CKPT_FULL);
	for (size_t i = 1; i < k.size(); i++)
		CHECK(k[i] == KVM_FT_CKPT_DELTA);
}

TEST_CASE("truncated and corrupt logs give a clean error")
{
	Recorded r("ticker");
	auto log = ReadFile(r.log);
	auto frames = Frames(log);
	REQUIRE(frames.size() > 100);
	size_t cut = frames[frames.size() / 2].off;
	SECTION("cut inside a frame") {
		WriteFile(r.log, {log.begin(), log.begin() + cut + 11});
		GuestRun rep = ReplayGuest("ticker", r.log);
		CHECK(rep.s.err() == EINVAL);
		CHECK(rep.s.msg().find("truncated") != std::string::npos);
	}
	SECTION("cut at frame boundaries: an error, or going live finishes the run") {
		for (size_t i = 1; i < 8; i++) {
			const FrameRef &f = frames[frames.size() * i / 8];
			INFO("cut before record " << f.rec->seq << " type " << f.rec->type);
			WriteFile(r.log, {log.begin(), log.begin() + f.off});
			GuestRun rep = ReplayGuest("ticker", r.log);
			CHECK(rep.s.err() == ENODATA);
			CHECK(rep.s.msg().find("log ends at position") != std::string::npos);
			ModeConfig live;
			live.go_live = true;
			rep = ReplayGuest("ticker", r.log, live);
			INFO(rep.s.msg());
			CHECK(rep.s.ok());
			CHECK(rep.status == 1);
			CHECK(rep.out.find("ticker done") != std::string::npos);
		}
	}
	SECTION("one byte flipped") {
		log[cut + 20] ^= 0x10;
		WriteFile(r.log, log);
		GuestRun rep = ReplayGuest("ticker", r.log);
		CHECK(rep.s.err() == EINVAL);
		CHECK(rep.s.msg().find("CRC mismatch") != std::string::npos);
	}
	SECTION("header only") {
		WriteFile(r.log, {log.begin(), log.begin() + sizeof(kvm_ft_vmm_file_hdr)});
		GuestRun rep = ReplayGuest("ticker", r.log);
		CHECK(rep.s.err() == ENODATA);
	}
}

TEST_CASE("go-live: a replayer finishing a cut log continues on its own")
{
	Recorded r("compute");
	auto log = ReadFile(r.log);
	auto frames = Frames(log);
	size_t k = frames.size() / 2;
	while (frames[k].rec->type != KVM_FT_REC_VMM_EXIT)
		k++;
	WriteFile(r.log, {log.begin(), log.begin() + frames[k].off});
	ModeConfig cfg;
	cfg.go_live = true;
	GuestRun rep = ReplayGuest("compute", r.log, cfg);
	INFO(rep.s.msg());
	REQUIRE_OK(rep.s);
	CHECK(rep.st.went_live_at == frames[k].rec->pos - 1);
	CHECK(rep.status == r.rec.status);
	CHECK(rep.out == r.rec.out);		// deterministic guest: same result
	CHECK(rep.mem_hash == r.rec.mem_hash);
}
