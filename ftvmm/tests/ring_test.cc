// ring_test.cc - the FT log through a memfd ring consumed by ftlogd's
// RingReader (the test acker), with the output rule: console output is
// held until the ACK covers it.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "guest_run.h"
#include "log/ring_io.h"
#include "ftlog/ring_sink.h"
#include "ftlog/ring_source.h"

using namespace kvmft;
using namespace kvmft::vmm;
using namespace kvmft::vmm::test;

namespace {
// Plays ftlogd + secondary: copies records to a log file, then ACKs them.
// Starts only once the primary waits on a full ring.
void Acker(const RingView &v, const RingSink *sink, LogWriter *w, std::atomic<bool> *stop,
	   Status *err)
{
	while (!sink->stalls() && !stop->load())
		usleep(200);
	RingReader r(v);
	for (;;) {
		bool last = stop->load();
		std::vector<uint8_t> buf;
		uint64_t end, ts;
		size_t n = 0;
		Status s = r.Read(1 << 16, &buf, &end, &ts, &n);
		if (!s.ok()) {
			*err = s;
			return;
		}
		for (size_t off = 0; off < buf.size();) {
			auto *h = reinterpret_cast<kvm_ft_rec_hdr *>(&buf[off]);
			uint32_t len = h->len;
			if (!(s = w->Append(h, len)).ok()) {
				*err = s;
				return;
			}
			off += len;
		}
		if (n)
			r.Ack(end);
		else if (last)
			return;
		else
			usleep(200);
	}
}
} // namespace

TEST_CASE("record into a ring: the acker's copy replays exactly, output waits for ACKs")
{
	RequireKvm();
	RingSet rings;
	REQUIRE(RingSet::CreateMemfd(1, 1 << 16, &rings).ok());	// small: it fills
	std::string path = TempPath("ring.log");
	Booted b;
	REQUIRE_OK(Boot("ticker", true, &b));
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	RingSink sink(rings.ring(0), rings.event_fd());
	std::atomic<bool> stop{false};
	Status acker_err;
	std::thread t(Acker, rings.ring(0), &sink, w.get(), &stop, &acker_err);

	RecordReplay e(b.m.get());
	e.SetRecord(&sink);
	e.SetAck([&] { return sink.Ack(); });
	int status = 0;
	Status s = e.Run(&status);
	stop = true;
	t.join();
	INFO(s.msg() << " / " << acker_err.msg());
	REQUIRE_OK(s);
	REQUIRE_OK(acker_err);
	REQUIRE_OK(w->Flush());
	CHECK(status == 1);
	CHECK(sink.stalls() > 0);		// the primary waited on the full ring
	CHECK(b.m->console().held() == 0);
	std::string out = b.Output();
	CHECK(out.find("ticker done") != std::string::npos);

	GuestRun rep = ReplayGuest("ticker", path);
	INFO(rep.s.msg());
	REQUIRE_OK(rep.s);
	CHECK(rep.out == out);
	CHECK(rep.mem_hash == b.m->vm().MemHash());
	unlink(path.c_str());
}

TEST_CASE("output is held past the last acknowledged record")
{
	RequireKvm();
	GuestRun plain = RecordGuest("compute", "");
	REQUIRE_OK(plain.s);
	std::string path = TempPath("hold.log");
	Booted b;
	REQUIRE_OK(Boot("compute", true, &b));
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	ModeConfig cfg;
	cfg.hold_timeout_ns = 50000000;
	RecordReplay e(b.m.get(), cfg);
	e.SetRecord(w.get());
	const uint64_t acked = 400;		// records the "secondary" stored
	e.SetAck([&] { return acked; });
	int status = 0;
	Status s = e.Run(&status);
	CHECK(s.err() == ETIMEDOUT);
	CHECK(s.msg().find("still held") != std::string::npos);
	std::string out = b.Output();
	CHECK(!out.empty());
	CHECK(out.size() < plain.out.size());
	CHECK(plain.out.compare(0, out.size(), out) == 0);	// a prefix
	// Everything released was written before record `acked`.
	LogReader r;
	REQUIRE_OK(LogReader::Open(path, &r));
	size_t uart_bytes = 0;
	const kvm_ft_rec_hdr *h;
	while (r.Next(&h).ok() && h && h->seq < acked) {
		auto *p = reinterpret_cast<const kvm_ft_rec_pio *>(h);
		if (h->type == KVM_FT_REC_PIO && p->port == 0x3f8 && p->dir == KVM_FT_DIR_OUT)
			uart_bytes++;
	}
	CHECK(out.size() <= uart_bytes);
	CHECK(out.size() + 1 >= uart_bytes);
	unlink(path.c_str());
}

// An SMP live log has no VMM_EXIT records: RingSource must still give back
// the records of epochs already read, or a long-running secondary grows.
TEST_CASE("a live SMP log keeps only the epoch being read in memory")
{
	RingSet rings;
	REQUIRE_OK(RingSet::CreateMemfd(1, 1 << 16, &rings));
	RingSink sink(rings.ring(0), rings.event_fd());
	RingSource src(&rings, 1000000000ULL);
	const int kEpochs = 300, kPages = 3;
	size_t most = 0;
	uint64_t seq = 0;
	auto hdr = [&](kvm_ft_rec_hdr *h, uint16_t type, uint32_t len, uint64_t epoch) {
		memset(h, 0, sizeof(*h));
		h->type = type;
		h->len = len;
		h->seq = seq++;
		h->pos = epoch;
	};
	for (int e = 0; e < kEpochs; e++) {
		kvm_ft_vmm_epoch b{};
		hdr(&b.hdr, KVM_FT_REC_VMM_EPOCH_BEGIN, sizeof(b), e);
		b.number = e;
		REQUIRE_OK(sink.Append(&b, sizeof(b)));
		std::vector<uint64_t> page((sizeof(kvm_ft_vmm_page) + 4096) / 8);
		auto *p = reinterpret_cast<kvm_ft_vmm_page *>(page.data());
		for (int i = 0; i < kPages; i++) {
			hdr(&p->hdr, KVM_FT_REC_VMM_CKPT_PAGE, page.size() * 8, e);
			p->gpa = 4096 * (e * kPages + i);
			REQUIRE_OK(sink.Append(p, page.size() * 8));
		}
		hdr(&b.hdr, KVM_FT_REC_VMM_EPOCH_END, sizeof(b), e);
		REQUIRE_OK(sink.Append(&b, sizeof(b)));
		kvm_ft_vmm_net_sent n{};
		hdr(&n.hdr, KVM_FT_REC_VMM_NET_SENT, sizeof(n), e);
		n.sent_frames = e;
		REQUIRE_OK(sink.Append(&n, sizeof(n)));

		// Read the epoch as Epochs::ApplyEpoch does: every record of
		// it stays valid until its EPOCH_END has been read.
		std::vector<const kvm_ft_rec_hdr *> recs;
		for (int i = 0; i < kPages + 2; i++) {
			const kvm_ft_rec_hdr *r = nullptr;
			REQUIRE_OK(src.Next(&r));
			REQUIRE(r);
			recs.push_back(r);
			most = std::max(most, src.queued());
		}
		CHECK(recs[0]->type == KVM_FT_REC_VMM_EPOCH_BEGIN);
		CHECK(reinterpret_cast<const kvm_ft_vmm_epoch *>(recs[0])->number == uint64_t(e));
		for (int i = 0; i < kPages; i++)
			CHECK(reinterpret_cast<const kvm_ft_vmm_page *>(recs[1 + i])->gpa ==
			      uint64_t(4096 * (e * kPages + i)));
		CHECK(recs[kPages + 1]->type == KVM_FT_REC_VMM_EPOCH_END);
		const kvm_ft_rec_hdr *r = nullptr;
		REQUIRE_OK(src.Next(&r));
		REQUIRE(r);
		CHECK(r->type == KVM_FT_REC_VMM_NET_SENT);
		CHECK(reinterpret_cast<const kvm_ft_vmm_net_sent *>(r)->sent_frames == uint64_t(e));
		most = std::max(most, src.queued());
	}
	CHECK(src.vmm_records() == uint64_t(kEpochs * (kPages + 3)));
	// One epoch and the record before it, not the whole log.
	CHECK(most <= kPages + 3);
}

// With --capture kernel the log also holds kvm_ft.ko's probe records: they
// are skipped, and each of ftvmm's port writes is checked against the
// module's record of the same exit, but not across a LOST record (the
// module's record of that exit may be one of the lost ones).
TEST_CASE("kvm_ft.ko records in a live log: skipped, port writes checked, not across a loss")
{
	RingSet rings;
	REQUIRE_OK(RingSet::CreateMemfd(1, 1 << 16, &rings));
	RingSink sink(rings.ring(0), rings.event_fd());
	RingSource src(&rings, 100000000ULL);
	uint64_t seq = 0;
	auto pio = [&](bool kernel, uint16_t port, uint8_t dir) {
		kvm_ft_rec_pio p{};
		p.hdr.type = kernel ? KVM_FT_REC_PIO : KVM_FT_REC_VMM_WRAP_FIRST + int{KVM_FT_REC_PIO};
		p.hdr.flags = kernel ? KVM_FT_RECF_KERNEL : 0;
		p.hdr.len = sizeof(p);
		p.hdr.seq = seq++;
		p.port = port;
		p.size = 1;
		p.dir = dir;
		p.count = 1;
		REQUIRE_OK(sink.Append(&p, sizeof(p)));
	};
	pio(true, 0x40, KVM_FT_DIR_OUT);	// exit 1: the same port write
	pio(false, 0x40, KVM_FT_DIR_OUT);
	pio(false, 0x71, KVM_FT_DIR_IN);	// exit 2: a read, traced on re-entry
	pio(true, 0x71, KVM_FT_DIR_IN);
	kvm_ft_rec_lost l{};			// exit 3's module record lost
	l.hdr.type = KVM_FT_REC_LOST;
	l.hdr.flags = KVM_FT_RECF_KERNEL;
	l.hdr.len = sizeof(l);
	l.hdr.seq = seq++;
	l.count = 1;
	REQUIRE_OK(sink.Append(&l, sizeof(l)));
	pio(false, 0x3f8, KVM_FT_DIR_OUT);
	pio(true, 0x20, KVM_FT_DIR_OUT);	// exit 4: the ports differ
	pio(false, 0x21, KVM_FT_DIR_OUT);

	const uint16_t want[] = {0x40, 0x71, 0x3f8, 0x21};
	for (uint16_t port : want) {
		const kvm_ft_rec_hdr *r = nullptr;
		REQUIRE_OK(src.Next(&r));
		REQUIRE(r);
		CHECK(r->type == KVM_FT_REC_PIO);	// unwrapped
		CHECK(!(r->flags & KVM_FT_RECF_KERNEL));
		CHECK(reinterpret_cast<const kvm_ft_rec_pio *>(r)->port == port);
	}
	const kvm_ft_rec_hdr *r = nullptr;
	REQUIRE_OK(src.Next(&r));
	CHECK(!r);				// idle past the timeout: the end
	CHECK(src.kernel_records() == 3);
	CHECK(src.kernel_lost() == 1);
	CHECK(src.vmm_records() == 4);
	CHECK(src.pio_checked() == 2);
	CHECK(src.pio_differ() == 1);
}

// An SMP primary with kernel capture: the VMM's records in ring 0, the
// other vCPUs' probe records alone in rings 1..: those are drained and
// counted (a ring never read would fill and stall the log), and a VMM
// record outside ring 0 is refused.
TEST_CASE("kvm_ft.ko rings of the other vCPUs are drained, a VMM record there is refused")
{
	RingSet rings;
	REQUIRE_OK(RingSet::CreateMemfd(2, 1 << 16, &rings));
	RingSink vmm(rings.ring(0), rings.event_fd());
	RingSink vcpu1(rings.ring(1), rings.event_fd());
	RingSource src(&rings, 100000000ULL);
	uint64_t seq = 0;
	auto rec = [&](RingSink *sink, bool kernel, uint16_t type) {
		kvm_ft_rec_pio p{};
		p.hdr.type = type;
		p.hdr.flags = kernel ? KVM_FT_RECF_KERNEL : 0;
		p.hdr.len = sizeof(p);
		p.hdr.seq = seq++;
		p.dir = KVM_FT_DIR_OUT;
		REQUIRE_OK(sink->Append(&p, sizeof(p)));
	};
	// More probe records than ring 1 holds, in rounds: each round is
	// read through ring 0's epoch record.
	const int per_round = (1 << 16) / 2 / sizeof(kvm_ft_rec_pio);
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < per_round; i++)
			rec(&vcpu1, true, KVM_FT_REC_PIO);
		rec(&vmm, false, KVM_FT_REC_VMM_EPOCH_END);
		const kvm_ft_rec_hdr *r = nullptr;
		REQUIRE_OK(src.Next(&r));
		REQUIRE(r);
		CHECK(r->type == KVM_FT_REC_VMM_EPOCH_END);
		CHECK(RingFits(rings.ring(1), (1 << 16) / 2));	// ring 1 released
	}
	CHECK(src.kernel_records() == uint64_t(4 * per_round));
	CHECK(src.kernel_other() == uint64_t(4 * per_round));
	CHECK(src.vmm_records() == 4);
	rec(&vcpu1, false, KVM_FT_REC_VMM_EPOCH_END);
	const kvm_ft_rec_hdr *r = nullptr;
	Status s = src.Next(&r);
	CHECK(s.err() == EPROTO);
	CHECK(s.msg().find("log ring 1: a VMM record outside ring 0") != std::string::npos);
}
