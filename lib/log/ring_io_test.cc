// Unit tests for RingReader (read-ahead, release on ACK, rewind) and
// RingWriter (exact copy, never drops).
#include "log/ring_io.h"

#include <catch2/catch.hpp>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <vector>

using namespace kvmft;

namespace {

kvm_ft_rec_pio Pio(uint64_t value)
{
	kvm_ft_rec_pio r{};
	r.hdr.type = KVM_FT_REC_PIO;
	r.port = 0x80;
	r.size = 1;
	r.count = 1;
	r.value = value;
	return r;
}

std::vector<uint64_t> Values(const std::vector<uint8_t> &buf)
{
	std::vector<uint64_t> v;
	for (size_t off = 0; off < buf.size(); off += sizeof(kvm_ft_rec_pio)) {
		kvm_ft_rec_pio r;
		std::memcpy(&r, buf.data() + off, sizeof(r));
		v.push_back(r.value);
	}
	return v;
}

} // namespace

TEST_CASE("reader keeps unACKed records in the ring and resends them")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	const RingView &v = rs.ring(0);
	RingProducer p(v, rs.event_fd());
	RingReader rd(v);
	for (uint64_t i = 0; i < 10; i++) {
		auto r = Pio(i);
		REQUIRE(p.Write(&r, sizeof(r)));
	}
	std::vector<uint8_t> out;
	uint64_t end = 0, ts = 0;
	size_t n = 0;
	REQUIRE(rd.Read(4 * sizeof(kvm_ft_rec_pio), &out, &end, &ts, &n).ok());
	CHECK(n == 4);
	CHECK(Values(out) == std::vector<uint64_t>{0, 1, 2, 3});
	uint64_t first_end = end;
	out.clear();
	REQUIRE(rd.Read(1 << 20, &out, &end, &ts, &n).ok());
	CHECK(n == 6);
	CHECK(!rd.HasUnsent());
	// Nothing is released before an ACK: the producer still sees it used.
	CHECK(v.ctl->consumer_pos == 0);
	CHECK(v.ctl->ack_pos == 0);
	rd.Ack(first_end);
	CHECK(v.ctl->consumer_pos == first_end);
	CHECK(v.ctl->ack_pos == first_end);
	// A new connection resends from the ACK, not from the send cursor.
	rd.Rewind();
	out.clear();
	REQUIRE(rd.Read(1 << 20, &out, &end, &ts, &n).ok());
	CHECK(Values(out) == std::vector<uint64_t>{4, 5, 6, 7, 8, 9});
	// An old ACK never moves the position back.
	rd.Ack(first_end - 8);
	CHECK(v.ctl->ack_pos == first_end);
}

TEST_CASE("a ring full of unACKed records makes the producer wait, an ACK frees it")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	const RingView &v = rs.ring(0);
	RingProducer p(v, rs.event_fd());
	RingReader rd(v);
	uint64_t i = 0;
	while (RingFits(v, sizeof(kvm_ft_rec_pio))) {
		auto r = Pio(i++);
		REQUIRE(p.Write(&r, sizeof(r)));
	}
	CHECK(i == 4096 / sizeof(kvm_ft_rec_pio));
	std::vector<uint8_t> out;
	uint64_t end = 0, ts = 0;
	size_t n = 0;
	REQUIRE(rd.Read(1 << 20, &out, &end, &ts, &n).ok());
	CHECK(n == i);
	CHECK(!RingFits(v, sizeof(kvm_ft_rec_pio))); // read is not enough
	rd.Ack(end);
	CHECK(RingFits(v, sizeof(kvm_ft_rec_pio)));
	CHECK(p.dropped() == 0);
}

TEST_CASE("writer stores records byte for byte and never overfills")
{
	RingSet src, dst;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &src).ok());
	REQUIRE(RingSet::CreateMemfd(1, 4096, &dst).ok());
	RingProducer p(src.ring(0), src.event_fd());
	RingReader rd(src.ring(0));
	RingWriter w(dst.ring(0), dst.event_fd());
	RingConsumer c(dst.ring(0));
	std::vector<uint64_t> seen;
	uint64_t next = 0;
	for (int round = 0; round < 40; round++) {
		for (int k = 0; k < 7; k++) {
			auto r = Pio(next++);
			REQUIRE(p.Write(&r, sizeof(r)));
		}
		std::vector<uint8_t> out;
		uint64_t end = 0, ts = 0;
		size_t n = 0;
		REQUIRE(rd.Read(1 << 20, &out, &end, &ts, &n).ok());
		std::vector<uint32_t> lens(n, sizeof(kvm_ft_rec_pio));
		if (!w.Fits(lens)) {
			// The replayer drains, then the frame fits.
			size_t got = 0;
			REQUIRE(c.Drain([&](const kvm_ft_rec_hdr &h) {
				seen.push_back(reinterpret_cast<const kvm_ft_rec_pio &>(h).value);
			}, &got).ok());
			REQUIRE(w.Fits(lens));
		}
		for (size_t off = 0; off < out.size(); off += sizeof(kvm_ft_rec_pio))
			w.Put(out.data() + off, sizeof(kvm_ft_rec_pio));
		w.Publish();
		rd.Ack(end);
	}
	size_t got = 0;
	kvm_ft_rec_hdr last{};
	REQUIRE(c.Drain([&](const kvm_ft_rec_hdr &h) {
		seen.push_back(reinterpret_cast<const kvm_ft_rec_pio &>(h).value);
		last = h;
	}, &got).ok());
	REQUIRE(seen.size() == next);
	for (uint64_t k = 0; k < next; k++)
		REQUIRE(seen[k] == k);
	CHECK(c.gaps() == 0);
	CHECK(last.seq == next - 1); // the primary's sequence number, kept
	CHECK(dst.ring(0).prod->records == next);
}

TEST_CASE("writer publishes first and wakes a sleeping consumer only at Wake()")
{
	RingSet dst;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &dst).ok());
	RingWriter w(dst.ring(0), dst.event_fd());
	auto readable = [&] {
		pollfd p{dst.event_fd(), POLLIN, 0};
		return poll(&p, 1, 0) == 1;
	};
	auto drain_event = [&] {
		uint64_t v;
		return read(dst.event_fd(), &v, sizeof(v)) == sizeof(v);
	};
	// The consumer went to sleep: WAKEUP set.
	__atomic_fetch_or(&dst.ring(0).ctl->flags, KVM_FT_CTL_WAKEUP, __ATOMIC_SEQ_CST);
	auto r = Pio(7);
	w.Put(reinterpret_cast<const uint8_t *>(&r), sizeof(r));
	uint64_t end = w.PublishQuiet();
	CHECK(end == sizeof(r));
	CHECK(dst.ring(0).prod->producer_pos == end); // visible at once
	CHECK_FALSE(readable());                     // not woken yet
	w.Wake();
	REQUIRE(readable());
	REQUIRE(drain_event());
	w.Wake(); // nothing new published: no second wakeup
	CHECK_FALSE(readable());
	// A consumer that is awake (no WAKEUP) is not woken at all.
	__atomic_fetch_and(&dst.ring(0).ctl->flags, ~KVM_FT_CTL_WAKEUP, __ATOMIC_SEQ_CST);
	w.Put(reinterpret_cast<const uint8_t *>(&r), sizeof(r));
	w.PublishQuiet();
	w.Wake();
	CHECK_FALSE(readable());
	CHECK(dst.ring(0).prod->producer_pos == 2 * sizeof(r));
}
