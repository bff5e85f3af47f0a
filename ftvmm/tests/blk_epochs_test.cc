// blk_epochs_test.cc - virtio-blk end to end with the blkrmw guest on 2
// vCPUs, replicated by epochs: pending writes carried in the epochs,
// failover on the shared file and on a private copy.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <unistd.h>

#include <cstring>
#include <numeric>

#include <fmt/format.h>

#include "blk_fixture.h"
#include "checkpoint/checkpoint.h"
#include "guest_run.h"
#include "epoch/epochs.h"

using namespace kvmft;
using namespace kvmft::vmm;
using namespace kvmft::vmm::test;

namespace {
// blkrmw on 2 vCPUs, recording its epochs (2 ms) to a log file.
struct SmpBlkPrimary {
	Booted b;
	std::string path;
	std::unique_ptr<LogWriter> w;
	std::unique_ptr<Epochs> smp;
	SmpBlkPrimary(const std::string &disk, const std::string &tag, ModeConfig cfg)
		: path(TempPath(tag + ".log"))
	{
		REQUIRE_OK(Boot("blkrmw", true, &b, 64ULL << 20, disk, 2));
		auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
		hdr.nr_vcpus = 2;
		REQUIRE_OK(LogWriter::Create(path, hdr, &w));
		cfg.epoch_ns = 2000000;
		smp = std::make_unique<Epochs>(b.m.get(), cfg);
		smp->SetRecord(w.get());
	}
	~SmpBlkPrimary() { unlink(path.c_str()); }
	Disk *disk() const { return b.m->blk()->disk(); }
};

// The log image up to the end of epoch `epoch` (0: the whole log).
std::vector<uint8_t> UpToEpoch(std::vector<uint8_t> log, uint64_t epoch)
{
	if (!epoch)
		return log;
	auto frames = Frames(log);
	for (size_t i = 0; i + 1 < frames.size(); i++)
		if (frames[i].rec->type == KVM_FT_REC_VMM_EPOCH_END && frames[i].rec->pos == epoch)
			return {log.begin(), log.begin() + frames[i + 1].off};
	FAIL("no end of epoch " << epoch << " in the log");
	return {};
}

// A secondary on 2 vCPUs with its disk in `mode`, having applied a log.
struct SmpBlkSecondary {
	LogReader rd;
	std::unique_ptr<FileSource> src;
	Booted rb;
	std::unique_ptr<Epochs> sec;
	SmpBlkSecondary(const std::vector<uint8_t> &log, const std::string &disk, Disk::Mode mode)
	{
		REQUIRE_OK(LogReader::FromBytes(log, "log", &rd));
		src = std::make_unique<FileSource>(&rd);
		REQUIRE_OK(Boot("blkrmw", false, &rb, 64ULL << 20, disk, 2));
		rb.m->blk()->disk()->set_mode(mode);
		sec = std::make_unique<Epochs>(rb.m.get(), ModeConfig{});
		int status = 0;
		REQUIRE_OK(sec->ApplyLog(src.get(), &status));
	}
	Disk *disk() const { return rb.m->blk()->disk(); }
};
} // namespace

TEST_CASE("blkrmw on 2 vCPUs: epochs carry the pending writes, failover on the shared file")
{
	RequireKvm();
	PlainBlk plain("smpplain");

	// The primary's ACK trails by one epoch. It stops at the first epoch
	// `acked` such that the file got some writes (epochs <= acked) and
	// the next epoch issued some: which epochs these are depends on how
	// fast the guest runs here, so they are found while it runs. The
	// secondary stored one epoch more; the shared file gets the writes
	// of epochs <= acked only.
	DiskFile d("smpshared");
	ModeConfig cfg;
	cfg.hold_timeout_ns = 50000000;
	SmpBlkPrimary p(d.path, "smpdisk", cfg);
	// By epoch number; epoch 0 is written before the vCPUs start (no
	// writes, no callback: its end stands for "nothing acknowledged").
	std::vector<uint64_t> ends{0};	// log position after each epoch
	std::vector<size_t> issued{0};	// disk writes issued in each epoch
	p.smp->SetStopPoints(1, [&] {
		// vCPUs stopped: this epoch's writes carry its end's tag now
		size_t n = 0;
		for (const auto &wr : p.disk()->overlay())
			n += wr.tag == p.w->tag();
		ends.push_back(p.w->tag());
		issued.push_back(n);
		return Status::Ok();
	});
	size_t acked = 0;	// 0: not chosen yet
	p.smp->SetAck([&]() -> uint64_t {
		const size_t last = ends.size() - 1;	// the epoch just ended
		if (last < 2)
			return 0;
		if (!acked && issued[last] > 0 &&
		    std::accumulate(issued.begin(), issued.end() - 1, size_t{0}) > 0)
			acked = last - 1;
		return ends[acked ? acked : last - 1];
	});
	int status = 0;
	Status s = p.smp->Run(&status);
	INFO(s.msg());
	INFO("writes per epoch: " << fmt::format("{}", fmt::join(issued, " ")));
	REQUIRE(acked);
	CHECK(s.err() == ETIMEDOUT);
	CHECK(s.msg().find("disk writes and 0 network frames still held") != std::string::npos);
	REQUIRE_OK(p.w->Flush());
	CHECK(d.Bytes() != Blank());
	CHECK(d.Bytes() != plain.disk.Bytes());

	// The secondary's log ends with epoch acked + 1.
	SmpBlkSecondary sec(UpToEpoch(ReadFile(p.path), acked + 1), d.path, Disk::kEpochs);
	CHECK(sec.sec->stats().applied == acked + 2);
	const size_t pending = sec.disk()->overlay().size();
	CHECK(pending >= issued[acked + 1]);	// not in the file
	CHECK(pending > 0);
	REQUIRE(sec.sec->Run(&status).ok());	// go live
	CHECK(status == 1);
	CHECK(sec.disk()->replay_stats().applied == pending);
	CHECK(sec.rb.Output() == plain.run.out);
	CHECK(d.Bytes() == plain.disk.Bytes());
}

// A secondary with a disk of its own (--disk-private on 2 vCPUs): an SMP
// primary recording to a file holds each epoch's writes until the epoch
// is logged, so every write is in the state of the epoch that issued it;
// the secondary writes each epoch's new ones to its copy as it applies
// them. From the whole log the copy ends as the primary's disk; from a
// cut log it holds exactly the writes issued so far, and going live
// finishes the run on it.
TEST_CASE("blkrmw on 2 vCPUs: a secondary's private copy follows the epochs, goes live on it")
{
	RequireKvm();
	PlainBlk plain("smpprivplain");

	DiskFile d("smpprivpri");
	SmpBlkPrimary p(d.path, "smppriv", ModeConfig{});
	std::vector<uint64_t> seqs{0};	// writes issued by the end of each epoch
	p.smp->SetStopPoints(1, [&] {
		seqs.push_back(p.disk()->next_seq());
		return Status::Ok();
	});
	int status = 0;
	REQUIRE_OK(p.smp->Run(&status));
	REQUIRE(status == 1);
	REQUIRE_OK(p.w->Flush());
	const uint64_t total = p.disk()->next_seq();
	REQUIRE(total > 0);
	CHECK(p.disk()->stats().released == total);	// each once logged
	CHECK(d.Bytes() == plain.disk.Bytes());
	const auto log = ReadFile(p.path);

	SECTION("the whole log: the copy ends as the primary's disk") {
		DiskFile copy("smpprivall");
		SmpBlkSecondary sec(log, copy.path, Disk::kEpochsPrivate);
		CHECK(sec.disk()->replay_stats().copied == total);
		CHECK(copy.Bytes() == plain.disk.Bytes());
	}
	SECTION("a cut log: the writes so far, then go live on the copy") {
		// The first epoch end by which half the writes were issued.
		size_t k = 1;
		while (k < seqs.size() && seqs[k] < total / 2)
			k++;
		REQUIRE(k < seqs.size());
		INFO("cut after epoch " << k << ": " << seqs[k] << " of " << total << " writes");
		REQUIRE(seqs[k] < total);
		DiskFile copy("smpprivcut");
		SmpBlkSecondary sec(UpToEpoch(log, k), copy.path, Disk::kEpochsPrivate);
		CHECK(sec.sec->stats().applied == k + 1);
		CHECK(sec.disk()->replay_stats().copied == seqs[k]);
		CHECK(sec.disk()->overlay().empty());
		CHECK(copy.Bytes() != Blank());
		CHECK(copy.Bytes() != plain.disk.Bytes());
		REQUIRE(sec.sec->Run(&status).ok());	// go live
		CHECK(status == 1);
		CHECK(sec.disk()->replay_stats().applied == 0);
		CHECK(sec.rb.Output() == plain.run.out);
		CHECK(copy.Bytes() == plain.disk.Bytes());
	}
}
