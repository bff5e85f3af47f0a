// ring_test.cc - the FT log through a memfd ring consumed by ftlogd's
// RingReader (the test acker), with the output rule: console output is
// held until the ACK covers it.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "guest_run.h"
#include "log/ring_io.h"
#include "ring_sink.h"

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
	REQUIRE(Boot("ticker", true, &b).ok());
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
	REQUIRE(LogWriter::Create(path, hdr, &w).ok());
	RingSink sink(rings.ring(0), rings.event_fd());
	std::atomic<bool> stop{false};
	Status acker_err;
	std::thread t(Acker, rings.ring(0), &sink, w.get(), &stop, &acker_err);

	Engine e(b.m.get());
	e.SetRecord(&sink);
	e.SetAck([&] { return sink.Ack(); });
	int status = 0;
	Status s = e.Run(&status);
	stop = true;
	t.join();
	INFO(s.msg() << " / " << acker_err.msg());
	REQUIRE(s.ok());
	REQUIRE(acker_err.ok());
	REQUIRE(w->Flush().ok());
	CHECK(status == 1);
	CHECK(sink.stalls() > 0);		// the primary waited on the full ring
	CHECK(b.m->console().held() == 0);
	std::string out = b.Output();
	CHECK(out.find("ticker done") != std::string::npos);

	GuestRun rep = ReplayGuest("ticker", path);
	INFO(rep.s.msg());
	REQUIRE(rep.s.ok());
	CHECK(rep.out == out);
	CHECK(rep.mem_hash == b.m->vm().MemHash());
	unlink(path.c_str());
}

TEST_CASE("output is held past the last acknowledged record")
{
	RequireKvm();
	GuestRun plain = RecordGuest("compute", "");
	REQUIRE(plain.s.ok());
	std::string path = TempPath("hold.log");
	Booted b;
	REQUIRE(Boot("compute", true, &b).ok());
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
	REQUIRE(LogWriter::Create(path, hdr, &w).ok());
	EngineConfig cfg;
	cfg.hold_timeout_ns = 50000000;
	Engine e(b.m.get(), cfg);
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
	REQUIRE(LogReader::Open(path, &r).ok());
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
