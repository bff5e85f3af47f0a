// blk_test.cc - virtio-blk end to end with the blkrmw guest on one vCPU
// (record/replay): record -> replay equality under jitter, go-live from
// cut logs leaving the disk as the primary left it, the output rule on
// disk writes, tampered disk read data, snapshots carrying the device
// state. blk_epochs_test.cc: the same guest on 2 vCPUs, by epochs.
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

TEST_CASE("blkrmw: replay is exact under jitter and never touches its disk")
{
	auto seed = GENERATE(1, 2, 3);
	INFO("seed " << seed);
	Recorded r(seed);
	CHECK(r.disk.Bytes() != Blank());
	auto log = ReadFile(r.log);
	uint64_t logged = 0;
	for (auto &f : Frames(log))
		if (f.rec->type == KVM_FT_REC_VMM_BLK_READ)
			logged += reinterpret_cast<kvm_ft_vmm_blk_read *>(f.rec)->bytes;
	CHECK(logged == kBlkrmwReadBytes);

	DiskFile other("rep");
	GuestRun rep = ReplayGuest("blkrmw", r.log, {}, other.path);
	INFO(rep.s.msg());
	REQUIRE_OK(rep.s);
	CHECK(rep.status == 1);
	CHECK(rep.out == r.rec.out);
	CHECK(rep.mem_hash == r.rec.mem_hash);
	CHECK(rep.st.positions == r.rec.st.positions);
	CHECK(rep.st.irqs == r.rec.st.irqs);
	CHECK(rep.st.ckpt.count == r.rec.st.ckpt.count);
	CHECK(r.rec.st.ckpt.count > 0);	// its long spins were kicked
	CHECK(other.Bytes() == Blank());
}

TEST_CASE("blkrmw: going live from a cut log leaves the disk as the primary left it")
{
	Recorded r(4);
	auto log = ReadFile(r.log);
	auto frames = Frames(log);
	REQUIRE(frames.size() > 1000);
	std::vector<size_t> cuts;	// frame index to cut before
	for (size_t i = 1; i < 6; i++)
		cuts.push_back(frames.size() * i / 6);
	// right after a replayed disk interrupt, and between a QueueNotify
	// and the data it read
	for (size_t i = frames.size() / 3; i + 1 < frames.size(); i++) {
		auto *irq = reinterpret_cast<kvm_ft_vmm_irq *>(frames[i].rec);
		if (frames[i].rec->type == KVM_FT_REC_VMM_IRQ && irq->vector == 0x25) {
			cuts.push_back(i + 1);
			break;
		}
	}
	for (size_t i = frames.size() / 2; i < frames.size(); i++)
		if (frames[i].rec->type == KVM_FT_REC_VMM_BLK_READ) {
			cuts.push_back(i);
			break;
		}
	REQUIRE(cuts.size() == 7);
	std::string cut = TempPath("blkcut.log");
	for (size_t k : cuts) {
		INFO("cut before record " << k << " type " << frames[k].rec->type);
		WriteFile(cut, {log.begin(), log.begin() + frames[k].off});
		DiskFile fresh("live");
		ModeConfig live;
		live.go_live = true;
		GuestRun rep = ReplayGuest("blkrmw", cut, live, fresh.path);
		INFO(rep.s.msg() << "\n" << rep.out);
		REQUIRE_OK(rep.s);
		CHECK(rep.status == 1);
		CHECK(rep.st.went_live_at > 0);
		CHECK(LastLine(rep.out) == LastLine(r.rec.out));
		CHECK(fresh.Bytes() == r.disk.Bytes());
	}
	unlink(cut.c_str());
}

TEST_CASE("blkrmw: going live inside an exit, the new log starts after it and replays")
{
	Recorded r(7);
	auto log = ReadFile(r.log);
	auto frames = Frames(log);
	// before a QueueNotify's VMM_EXIT, between it and its MMIO record,
	// and between that and its disk data
	size_t k = frames.size() / 2;
	while (!(frames[k].rec->type == KVM_FT_REC_MMIO &&
		 reinterpret_cast<kvm_ft_rec_mmio *>(frames[k].rec)->gpa == 0xd0000050 &&
		 frames[k + 1].rec->type == KVM_FT_REC_VMM_BLK_READ))
		k++;
	for (size_t cut : {k - 1, k, k + 1}) {
		INFO("cut before record " << cut << " type " << frames[cut].rec->type);
		std::string cutlog = TempPath("blkin.cut.log"), newlog = TempPath("blkin.new.log");
		WriteFile(cutlog, {log.begin(), log.begin() + frames[cut].off});
		DiskFile fresh("blkin");
		Booted b;
		REQUIRE_OK(Boot("blkrmw", true, &b, 64ULL << 20, fresh.path));
		LogReader rd;
		REQUIRE_OK(LogReader::Open(cutlog, &rd));
		FileSource src(&rd);
		std::unique_ptr<LogWriter> w;
		auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
		REQUIRE_OK(LogWriter::Create(newlog, hdr, &w));
		ModeConfig live;
		live.go_live = true;
		RecordReplay e(b.m.get(), live);
		e.SetReplay(&src);
		e.SetRecord(w.get());
		int status = 0;
		Status s = e.Run(&status);
		INFO(s.msg());
		REQUIRE_OK(s);
		CHECK(status == 1);
		// at a record boundary the replayer goes live before the exit
		uint64_t at = frames[k].rec->pos - (cut == k - 1 ? 1 : 0);
		CHECK(e.stats().went_live_at == at);
		CHECK(fresh.Bytes() == r.disk.Bytes());
		std::string out = b.Output();
		CHECK(LastLine(out) == LastLine(r.rec.out));
		// the new log: FULL checkpoint and GO_LIVE once the exit is done
		auto nl = ReadFile(newlog);
		auto nf = Frames(nl);
		REQUIRE(nf.size() > 2);
		CHECK(nf[0].rec->type == KVM_FT_REC_VMM_CKPT_BEGIN);
		CHECK(nf[0].rec->pos == at);
		DiskFile other("blkin.rep");
		GuestRun rep = ReplayGuest("blkrmw", newlog, {}, other.path);
		INFO(rep.s.msg());
		REQUIRE_OK(rep.s);
		CHECK(rep.status == 1);
		CHECK(rep.mem_hash == b.m->vm().MemHash());
		REQUIRE(!rep.out.empty());
		CHECK(out.size() > rep.out.size());
		CHECK(out.compare(out.size() - rep.out.size(), rep.out.size(), rep.out) == 0);
		unlink(cutlog.c_str());
		unlink(newlog.c_str());
	}
}

TEST_CASE("blkrmw: output rule: no disk write reaches the file before its ACK")
{
	RequireKvm();
	PlainBlk plain("plain");

	DiskFile d("held");
	std::string path = TempPath("held.log");
	Booted b;
	REQUIRE_OK(Boot("blkrmw", true, &b, 64ULL << 20, d.path));
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	ModeConfig cfg;
	SECTION("nothing acknowledged until the guest ends, then everything") {
		RecordReplay e(b.m.get(), cfg);
		e.SetRecord(w.get());
		uint64_t calls = 0;
		bool early = false, checked = false, untouched = false;
		e.SetAck([&]() -> uint64_t {
			if (!b.m->exit_port().done()) {
				if (++calls % 128 == 0 && ReadFile(d.path) != Blank())
					early = true;
				return 0;
			}
			if (!checked) {
				checked = true;
				untouched = ReadFile(d.path) == Blank();
			}
			return UINT64_MAX;
		});
		int status = 0;
		Status s = e.Run(&status);
		INFO(s.msg());
		REQUIRE_OK(s);
		CHECK(status == 1);
		CHECK(calls > 128);
		CHECK_FALSE(early);
		CHECK(checked);
		CHECK(untouched);
		CHECK(b.m->blk()->disk()->overlay().empty());
		CHECK(d.Bytes() == plain.disk.Bytes());
		CHECK(b.Output() == plain.run.out);
	}
	SECTION("an ACK that never comes: the run fails, the file is untouched") {
		cfg.hold_timeout_ns = 50000000;
		RecordReplay e(b.m.get(), cfg);
		e.SetRecord(w.get());
		e.SetAck([] { return uint64_t{0}; });
		int status = 0;
		Status s = e.Run(&status);
		CHECK(s.err() == ETIMEDOUT);
		CHECK(s.msg().find("disk writes and 0 network frames still held") != std::string::npos);
		CHECK(b.m->blk()->disk()->overlay().size() > 24 * 8);
		CHECK(d.Bytes() == Blank());
		CHECK(b.Output().empty());
	}
	unlink(path.c_str());
}

TEST_CASE("blkrmw: output rule: the file gets exactly the writes the ACK covers")
{
	RequireKvm();
	DiskFile d("partial");
	std::string path = TempPath("partial.log");
	Booted b;
	REQUIRE_OK(Boot("blkrmw", true, &b, 64ULL << 20, d.path));
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	ModeConfig cfg;
	cfg.hold_timeout_ns = 50000000;
	RecordReplay e(b.m.get(), cfg);
	e.SetRecord(w.get());
	const uint64_t acked = 3000;	// records the "secondary" stored
	e.SetAck([&] { return acked; });
	int status = 0;
	CHECK(e.Run(&status).err() == ETIMEDOUT);
	REQUIRE_OK(w->Flush());
	auto primary = d.Bytes();
	CHECK(primary != Blank());

	// A secondary holding those records replays exactly the writes of the
	// exits whose VMM_EXIT they include: the writes the primary released.
	// (An exit cut right after its VMM_EXIT is completed here; a
	// secondary going live would re-execute it.)
	auto log = ReadFile(path);
	auto frames = Frames(log);
	REQUIRE(frames.size() > acked + 10);
	size_t cut = acked;
	while (frames[cut].rec->pos == frames[acked - 1].rec->pos &&
	       (frames[cut].rec->type == KVM_FT_REC_MMIO ||
		frames[cut].rec->type == KVM_FT_REC_VMM_BLK_READ))
		cut++;
	std::string cutlog = TempPath("partial.cut.log");
	WriteFile(cutlog, {log.begin(), log.begin() + frames[cut].off});
	// replay: on the primary's file (shared storage) or on a copy of
	// the original disk of its own (private).
	auto replay = [&](const std::string &disk, bool priv, Disk::ReplayStats *rs) {
		Booted rb;
		REQUIRE_OK(Boot("blkrmw", false, &rb, 64ULL << 20, disk));
		LogReader rd;
		REQUIRE_OK(LogReader::Open(cutlog, &rd));
		FileSource src(&rd);
		ModeConfig rc;
		rc.private_disk = priv;
		RecordReplay er(rb.m.get(), rc);
		er.SetReplay(&src);
		CHECK(er.Run(&status).err() == ENODATA);
		if (!priv)
			CHECK(ReadFile(disk) == primary); // not written by the replayer
		REQUIRE_OK(rb.m->blk()->disk()->ApplyAll());
		*rs = rb.m->blk()->disk()->replay_stats();
	};
	SECTION("on the primary's file: the writes it reported written are dropped") {
		Disk::ReplayStats rs;
		replay(d.path, false, &rs);
		CHECK(d.Bytes() == primary);
		CHECK(rs.dropped > 0);
		CHECK(rs.peak < rs.dropped + rs.applied);
	}
	SECTION("on a private copy: it gets exactly the primary's writes") {
		DiskFile sec("partial.sec");
		Disk::ReplayStats rs;
		replay(sec.path, true, &rs);
		CHECK(sec.Bytes() == primary);
		CHECK(rs.dropped + rs.peak + rs.applied == 0);
	}
	unlink(path.c_str());
	unlink(cutlog.c_str());
}

TEST_CASE("blkrmw: failover on shared storage: the replayer keeps only unwritten writes")
{
	RequireKvm();
	PlainBlk plain("shplain");

	// The primary's ACKs trail its log by 200 records and stop 300
	// records short of `limit`, what the secondary stored when the
	// primary failed (the last ACKs were in flight). The primary writes
	// the shared file only up to its last ACK: the secondary holds
	// writes the file lacks, after reports of those it has.
	DiskFile d("shared");
	std::string path = TempPath("shared.log");
	Booted b;
	REQUIRE_OK(Boot("blkrmw", true, &b, 64ULL << 20, d.path));
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	ModeConfig cfg;
	cfg.hold_timeout_ns = 50000000;
	RecordReplay e(b.m.get(), cfg);
	e.SetRecord(w.get());
	const uint64_t limit = 5000;
	e.SetAck([&] {
		uint64_t n = w->records();
		return std::min<uint64_t>(n > 200 ? n - 200 : 0, limit - 300);
	});
	int status = 0;
	CHECK(e.Run(&status).err() == ETIMEDOUT);
	REQUIRE_OK(w->Flush());
	const uint64_t written_pos = b.m->blk()->disk()->written_pos();
	CHECK(written_pos > 0);

	auto log = ReadFile(path);
	auto frames = Frames(log);
	REQUIRE(frames.size() > limit + 10);
	uint64_t reports = 0;
	for (size_t i = 0; i < limit; i++)
		if (frames[i].rec->type == KVM_FT_REC_VMM_DISK_WRITTEN)
			reports++;
	CHECK(reports > 10);
	std::string cutlog = TempPath("shared.cut.log");
	WriteFile(cutlog, {log.begin(), log.begin() + frames[limit].off});

	// The secondary, on the same file, goes live at the end of what it
	// stored: the file ends as a run without failover leaves it.
	Booted rb;
	REQUIRE_OK(Boot("blkrmw", false, &rb, 64ULL << 20, d.path));
	LogReader rd;
	REQUIRE_OK(LogReader::Open(cutlog, &rd));
	FileSource src(&rd);
	ModeConfig live;
	live.go_live = true;
	RecordReplay er(rb.m.get(), live);
	er.SetReplay(&src);
	REQUIRE_OK(er.Run(&status));
	CHECK(status == 1);
	CHECK(er.stats().went_live_at > 0);
	CHECK(LastLine(rb.Output()) == LastLine(plain.run.out));
	CHECK(d.Bytes() == plain.disk.Bytes());
	auto rs = rb.m->blk()->disk()->replay_stats();
	INFO("dropped " << rs.dropped << " peak " << rs.peak << " applied " << rs.applied);
	CHECK(rs.dropped > 0);
	CHECK(rs.applied > 0);
	// Never all of them at once: the report lets it forget along the way.
	CHECK(rs.peak < rs.dropped + rs.applied);
	unlink(path.c_str());
	unlink(cutlog.c_str());
}

TEST_CASE("blkrmw: a DISK_WRITTEN record ahead of its own position is refused")
{
	RequireKvm();
	DiskFile d("lying");
	std::string path = TempPath("lying.log");
	Booted b;
	REQUIRE_OK(Boot("blkrmw", true, &b, 64ULL << 20, d.path));
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	RecordReplay e(b.m.get());
	e.SetRecord(w.get());
	e.SetAck([] { return UINT64_MAX; });
	int status = 0;
	REQUIRE_OK(e.Run(&status));
	REQUIRE_OK(w->Flush());
	auto log = ReadFile(path);
	auto frames = Frames(log);
	size_t at = 0;
	for (size_t i = frames.size() / 2; i < frames.size() && !at; i++)
		if (frames[i].rec->type == KVM_FT_REC_VMM_DISK_WRITTEN)
			at = i;
	REQUIRE(at);
	// A primary claiming writes it cannot have made (past the record's
	// own position) would make the secondary drop writes the file lacks.
	auto *x = reinterpret_cast<kvm_ft_vmm_disk_written *>(frames[at].rec);
	x->written_pos = x->hdr.pos + 1;
	FixCrc(log, frames[at]);
	WriteFile(path, log);
	DiskFile other("lying.rep");
	GuestRun rep = ReplayGuest("blkrmw", path, {}, other.path);
	CHECK(rep.s.err() == EINVAL);
	CHECK(rep.s.msg().find("malformed DISK_WRITTEN record") != std::string::npos);
	CHECK(other.Bytes() == Blank());
	unlink(path.c_str());
}

TEST_CASE("blkrmw: tampered disk read data is a divergence")
{
	Recorded r(5);
	auto log = ReadFile(r.log);
	auto frames = Frames(log);
	int seen = 0;
	uint64_t pos = 0;
	bool sector = GENERATE(true, false);
	for (auto &f : frames) {
		if (f.rec->type != KVM_FT_REC_VMM_BLK_READ || ++seen < 10)
			continue;
		auto *b = reinterpret_cast<kvm_ft_vmm_blk_read *>(f.rec);
		if (sector)
			b->sector ^= 1;
		else
			reinterpret_cast<uint8_t *>(b + 1)[100] ^= 0x40;
		FixCrc(log, f);
		pos = f.rec->pos;
		break;
	}
	REQUIRE(pos > 0);
	WriteFile(r.log, log);
	DiskFile other("tampered");
	GuestRun rep = ReplayGuest("blkrmw", r.log, {}, other.path);
	INFO(rep.s.msg());
	CHECK(rep.s.err() == EPROTO);
	auto at = rep.s.msg().find("divergence at position ");
	REQUIRE(at != std::string::npos);
	uint64_t where = std::stoull(rep.s.msg().substr(at + 23));
	if (sector) {	// at the read itself
		CHECK(where == pos);
		CHECK(rep.s.msg().find("sector") != std::string::npos);
	} else {	// where the guest, finding a bad checksum, acts otherwise
		CHECK(where > pos);
	}
	CHECK(other.Bytes() == Blank());
}

TEST_CASE("blkrmw: a log of a VM with a disk does not replay without one")
{
	Recorded r(6);
	GuestRun rep = ReplayGuest("blkrmw", r.log);
	CHECK(rep.s.err() == EPROTO);
	CHECK(rep.s.msg().find("MMIO read of 0xd0000000") != std::string::npos);
	CHECK(rep.s.msg().find("replays with --disk") != std::string::npos);
}

TEST_CASE("blkrmw: snapshot + deltas carry the device, the VM continues on a copy of its disk")
{
	RequireKvm();
	DiskFile sd("snapsrc");
	Booted src;
	REQUIRE_OK(Boot("blkrmw", true, &src, 64ULL << 20, sd.path));
	RecordReplay es(src.m.get());
	std::vector<std::string> files;
	uint64_t parent = 0;
	int status = 0;
	uint64_t stops[] = {300, 900, 1500, 2100};
	for (size_t i = 0; i < 4; i++) {
		REQUIRE_OK(es.RunUntil(&status, stops[i]));
		REQUIRE(status == -1);
		files.push_back(TempPath("blk.snap." + std::to_string(i)));
		uint32_t kind = i ? KVM_FT_CKPT_DELTA : KVM_FT_CKPT_FULL;
		auto hdr = MakeFileHeader(i ? KVM_FT_FILE_DELTA : KVM_FT_FILE_SNAPSHOT,
					  src.m->vm().mem_bytes(), src.image_hash, parent);
		std::unique_ptr<LogWriter> w;
		REQUIRE_OK(LogWriter::Create(files.back(), hdr, &w));
		CkptStats st;
		REQUIRE_OK(WriteCheckpoint(*src.m, es.state(), w.get(), kind, es.pos(), i, &st));
		REQUIRE_OK(w->Flush());
		parent = hdr.id;
	}
	std::string prefix = src.Output();
	DiskFile dd("snapdst", sd.Bytes());	// the disk as the source left it

	Booted dst;
	REQUIRE_OK(Boot("blkrmw", true, &dst, 64ULL << 20, dd.path));
	RecordReplay ed(dst.m.get());
	for (auto &f : files) {
		LogReader rd;
		REQUIRE_OK(LogReader::Open(f, &rd));
		const kvm_ft_rec_hdr *h;
		REQUIRE_OK(rd.Next(&h));
		REQUIRE(h);
		FileSource fs(&rd);
		CkptStats st;
		Status s = ApplyCheckpoint(*dst.m, ed.state(), h, &fs, &st);
		INFO(s.msg());
		REQUIRE_OK(s);
	}
	CHECK(ed.pos() == es.pos());
	// device-written pages (read data, used ring) are in the deltas too
	CHECK(memcmp(src.m->vm().mem(), dst.m->vm().mem(), src.m->vm().mem_bytes()) == 0);
	std::vector<uint8_t> a, b;
	src.m->blk()->Save(&a);
	dst.m->blk()->Save(&b);
	CHECK(a == b);

	int s1 = 0, s2 = 0;
	REQUIRE_OK(es.Run(&s1));
	Status s = ed.Run(&s2);
	INFO(s.msg());
	REQUIRE_OK(s);
	CHECK(s1 == 1);
	CHECK(s2 == 1);
	CHECK(src.Output() == prefix + dst.Output());	// its output ignores the timer
	CHECK(dd.Bytes() == sd.Bytes());
	for (auto &f : files)
		unlink(f.c_str());
}
