// Unit tests for the userspace ring producer and consumer.
#include "ring/ring.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

using namespace kvmft;

namespace {

constexpr uint32_t kPio = sizeof(kvm_ft_rec_pio);

kvm_ft_rec_pio Pio(uint16_t port, uint64_t value)
{
	kvm_ft_rec_pio r{};
	r.hdr.type = KVM_FT_REC_PIO;
	r.port = port;
	r.size = 1;
	r.dir = KVM_FT_DIR_OUT;
	r.count = 1;
	r.value = value;
	return r;
}

std::vector<kvm_ft_rec_pio> DrainPio(RingConsumer &c, Status *st = nullptr)
{
	std::vector<kvm_ft_rec_pio> out;
	size_t n = 0;
	Status s = c.Drain(
		[&](const kvm_ft_rec_hdr &h) {
			if (h.type == KVM_FT_REC_PIO)
				out.push_back(reinterpret_cast<const kvm_ft_rec_pio &>(h));
		},
		&n);
	if (st)
		*st = s;
	else
		REQUIRE(s.ok());
	return out;
}

} // namespace

TEST_CASE("records come out in order with their fields")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	RingProducer p(rs.ring(0), rs.event_fd());
	RingConsumer c(rs.ring(0));
	for (uint64_t i = 0; i < 10; i++) {
		auto r = Pio(0x3f8, i);
		REQUIRE(p.Write(&r, sizeof(r)));
	}
	auto got = DrainPio(c);
	REQUIRE(got.size() == 10);
	for (uint64_t i = 0; i < 10; i++) {
		CHECK(got[i].value == i);
		CHECK(got[i].hdr.seq == i);
		CHECK(got[i].port == 0x3f8);
		CHECK(got[i].hdr.len == sizeof(kvm_ft_rec_pio));
	}
	CHECK(c.Empty());
	CHECK(c.gaps() == 0);
}

TEST_CASE("records never wrap: the tail is padded")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	RingProducer p(rs.ring(0), rs.event_fd());
	RingConsumer c(rs.ring(0));
	// 4096 is not a multiple of the record size: the tail gets PADs.
	uint64_t v = 0;
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 30; i++) {
			auto r = Pio(1, v++);
			REQUIRE(p.Write(&r, sizeof(r)));
		}
		auto got = DrainPio(c);
		REQUIRE(got.size() == 30);
		CHECK(got.back().value == v - 1);
	}
	CHECK(c.records() == 1500);
	CHECK(c.gaps() == 0);
}

TEST_CASE("a full ring drops, counts exactly, and reports LOST")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	RingProducer p(rs.ring(0), rs.event_fd());
	RingConsumer c(rs.ring(0));
	int written = 0, dropped = 0;
	for (int i = 0; i < 200; i++) {
		auto r = Pio(2, static_cast<uint64_t>(i));
		if (p.Write(&r, sizeof(r)))
			written++;
		else
			dropped++;
	}
	CHECK(written == 4096 / static_cast<int>(sizeof(kvm_ft_rec_pio)));
	CHECK(dropped == 200 - written);
	CHECK(rs.ring(0).prod->lost == static_cast<uint64_t>(dropped));
	auto got = DrainPio(c);
	CHECK(got.size() == static_cast<size_t>(written));
	// The next record that fits is preceded by a LOST record.
	auto r = Pio(2, 999);
	REQUIRE(p.Write(&r, sizeof(r)));
	std::vector<uint16_t> types;
	size_t n;
	REQUIRE(c.Drain([&](const kvm_ft_rec_hdr &h) { types.push_back(h.type); }, &n).ok());
	REQUIRE(types == std::vector<uint16_t>{KVM_FT_REC_LOST, KVM_FT_REC_PIO});
	CHECK(c.lost() == static_cast<uint64_t>(dropped));
	CHECK(c.gaps() == 0);
}

TEST_CASE("corrupt records stop the drain with an error")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	RingProducer p(rs.ring(0), rs.event_fd());
	RingConsumer c(rs.ring(0));
	auto r = Pio(3, 1);
	REQUIRE(p.Write(&r, sizeof(r)));
	REQUIRE(p.Write(&r, sizeof(r)));
	const RingView &v = rs.ring(0);
	SECTION("length not a multiple of 8")
	{
		uint32_t bad = 44;
		std::memcpy(v.data + kPio + 4, &bad, 4);
	}
	SECTION("length past the producer position")
	{
		uint32_t bad = 4000;
		std::memcpy(v.data + kPio + 4, &bad, 4);
	}
	SECTION("unknown type")
	{
		uint16_t bad = 0;
		std::memcpy(v.data + kPio, &bad, 2);
	}
	Status st;
	auto got = DrainPio(c, &st);
	CHECK_FALSE(st.ok());
	CHECK(st.err() == EPROTO);
	CHECK(got.size() == 1); // the good record before it still came out
	CHECK(v.ctl->consumer_pos == kPio);
}

TEST_CASE("a producer position out of range is refused")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	RingConsumer c(rs.ring(0));
	rs.ring(0).prod->producer_pos = 1 << 20;
	size_t n;
	CHECK(c.Drain([](const kvm_ft_rec_hdr &) {}, &n).err() == EPROTO);
}

TEST_CASE("mapping a memfd from elsewhere validates its headers")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(2, 8192, &rs).ok());
	RingSet other;
	REQUIRE(RingSet::MapMemfd(rs.fd(), rs.event_fd(), &other).ok());
	CHECK(other.size() == 2);
	CHECK(other.ring(1).size == 8192);

	rs.ring(1).prod->vcpu = 7;
	RingSet bad;
	CHECK(RingSet::MapMemfd(rs.fd(), -1, &bad).err() == EPROTO);
	rs.ring(1).prod->vcpu = 1;
	rs.ring(0).prod->magic = 0;
	CHECK(RingSet::MapMemfd(rs.fd(), -1, &bad).err() == EPROTO);
}

TEST_CASE("a ring memfd is sealed against resizing, and an unsealed one is refused")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	struct stat sb;
	REQUIRE(fstat(rs.fd(), &sb) == 0);
	CHECK(ftruncate(rs.fd(), 0) < 0);
	CHECK(errno == EPERM);
	CHECK(ftruncate(rs.fd(), sb.st_size * 2) < 0);
	int seals = fcntl(rs.fd(), F_GET_SEALS);
	CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
	      (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));

	// The same ring in a memfd its creator could still shrink under us.
	UniqueFd raw(memfd_create("unsealed", MFD_CLOEXEC));
	REQUIRE(raw.valid());
	std::vector<char> copy(static_cast<size_t>(sb.st_size));
	REQUIRE(pread(rs.fd(), copy.data(), copy.size(), 0) == sb.st_size);
	REQUIRE(write(raw.get(), copy.data(), copy.size()) == sb.st_size);
	RingSet other;
	Status st = RingSet::MapMemfd(raw.get(), -1, &other);
	CHECK(st.err() == EPERM);
	CHECK(st.msg() == "ring memfd is not sealed against resizing (F_SEAL_SHRINK and "
			  "F_SEAL_GROW are required)");
}

TEST_CASE("bad geometry is rejected")
{
	RingSet rs;
	CHECK(RingSet::CreateMemfd(1, 5000, &rs).err() == EINVAL);
	CHECK(RingSet::CreateMemfd(0, 4096, &rs).err() == EINVAL);
	CHECK(RingSet::CreateMemfd(1, 1u << 25, &rs).err() == EINVAL);
}

TEST_CASE("producer and consumer threads: every record once, in order")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	RingProducer p(rs.ring(0), rs.event_fd());
	RingConsumer c(rs.ring(0));
	const uint64_t total = 200000;
	std::atomic<bool> done{false};
	std::thread prod([&] {
		for (uint64_t i = 0; i < total;) {
			auto r = Pio(4, i);
			// Retry on a full ring so nothing is lost in this test;
			// a dropped write still consumes a sequence number, which
			// the consumer must account for through LOST.
			if (p.Write(&r, sizeof(r)))
				i++;
		}
		done = true;
	});
	uint64_t expect = 0;
	bool ordered = true;
	while (!done || !c.Empty()) {
		size_t n;
		REQUIRE(c.Drain(
				 [&](const kvm_ft_rec_hdr &h) {
					 if (h.type != KVM_FT_REC_PIO)
						 return;
					 auto &r = reinterpret_cast<const kvm_ft_rec_pio &>(h);
					 ordered &= r.value == expect;
					 expect++;
				 },
				 &n)
				.ok());
		if (!n)
			rs.Wait(10);
	}
	prod.join();
	CHECK(ordered);
	CHECK(expect == total);
	CHECK(c.lost() == p.dropped());
	CHECK(c.gaps() == 0);
}

// The ABI is fixed-width and 8-byte aligned: any change here breaks it.
static_assert(sizeof(kvm_ft_rec_hdr) == 40);
static_assert(sizeof(kvm_ft_rec_exit) == 72);
static_assert(sizeof(kvm_ft_rec_entry) == 56);
static_assert(sizeof(kvm_ft_rec_pio) == 56);
static_assert(sizeof(kvm_ft_rec_mmio) == 64);
static_assert(sizeof(kvm_ft_rec_msr) == 56);
static_assert(sizeof(kvm_ft_rec_inj_virq) == 48);
static_assert(sizeof(kvm_ft_rec_lost) == 48);
static_assert(sizeof(kvm_ft_ring_ctl) == 64);
static_assert(sizeof(kvm_ft_ring_prod) == 64);
static_assert(offsetof(kvm_ft_ring_prod, abi_version) == 36);
static_assert(offsetof(kvm_ft_ring_prod, outputs_held) == 40);
static_assert(offsetof(kvm_ft_ring_prod, outputs_released) == 48);
static_assert(offsetof(kvm_ft_ring_prod, hold_ns_total) == 56);
static_assert(sizeof(kvm_ft_attach) == 48);
static_assert(sizeof(kvm_ft_info) == 56);
static_assert(sizeof(kvm_ft_session_info) == 64);

TEST_CASE("ABI struct sizes are multiples of 8")
{
	CHECK(sizeof(kvm_ft_rec_inj_virq) % 8 == 0);
	CHECK(offsetof(kvm_ft_rec_hdr, seq) == 16);
	CHECK(offsetof(kvm_ft_ring_ctl, ack_pos) == 16);
	CHECK(offsetof(kvm_ft_ring_ctl, read_pos) == 24);
}

// A read-ahead consumer (ftlogd) frees space only when the peer ACKs, so
// consumer_pos lags what it has read. It says how far it read in
// read_pos: the producer must wake it for the next record, and must not
// wake a consumer that has not read everything yet.
TEST_CASE("wakeups follow read_pos when a consumer reads ahead")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	RingProducer p(rs.ring(0), rs.event_fd());
	kvm_ft_ring_ctl *ctl = rs.ring(0).ctl;
	auto pending = [&] {
		uint64_t v = 0;
		return read(rs.event_fd(), &v, sizeof(v)) == sizeof(v) && v > 0;
	};
	auto r = Pio(0x80, 1);
	REQUIRE(p.Write(&r, sizeof(r)));
	uint64_t after_one = rs.ring(0).prod->producer_pos;
	ctl->flags |= KVM_FT_CTL_WAKEUP;
	(void)pending(); // whatever the first record did
	// consumer_pos still 0, read_pos 0: the consumer has not read it.
	REQUIRE(p.Write(&r, sizeof(r)));
	CHECK(!pending());
	// It read both (read_pos), freed nothing (consumer_pos 0): a new
	// record is news to it.
	ctl->read_pos = rs.ring(0).prod->producer_pos;
	REQUIRE(p.Write(&r, sizeof(r)));
	CHECK(pending());
	// Without read_pos the same consumer would sleep through it.
	ctl->read_pos = 0;
	ctl->consumer_pos = after_one;
	REQUIRE(p.Write(&r, sizeof(r)));
	CHECK(!pending());
}

TEST_CASE("ring set usage: bytes not yet consumed, over every ring")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(2, 4096, &rs).ok());
	CHECK(rs.usage().used == 0);
	CHECK(rs.usage().size == 2 * 4096);
	RingProducer p0(rs.ring(0), rs.event_fd()), p1(rs.ring(1), rs.event_fd());
	for (int i = 0; i < 3; i++) {
		auto r = Pio(1, i);
		REQUIRE(p0.Write(&r, kPio));
	}
	auto r = Pio(2, 0);
	REQUIRE(p1.Write(&r, kPio));
	CHECK(rs.usage().used == 4 * kPio);
	RingConsumer c0(rs.ring(0));
	CHECK(DrainPio(c0).size() == 3);
	CHECK(rs.usage().used == kPio);
	// A peer's nonsensical positions count at most the ring's size.
	rs.ring(1).ctl->consumer_pos = rs.ring(1).prod->producer_pos + 8;
	CHECK(rs.usage().used == 4096);
}

TEST_CASE("output rule figures: published in the producer page, summed per set")
{
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(2, 4096, &rs).ok());
	RingOutputs zero = rs.outputs();
	CHECK(zero.held == 0);
	CHECK(zero.released == 0);
	CHECK(zero.hold_ns_total == 0);
	RingPublishOutputs(rs.ring(0), {3, 10, 5000});
	RingPublishOutputs(rs.ring(1), {1, 2, 700});
	RingOutputs o = RingReadOutputs(rs.ring(0));
	CHECK(o.held == 3);
	CHECK(o.released == 10);
	CHECK(o.hold_ns_total == 5000);
	CHECK(rs.ring(0).prod->outputs_released == 10);
	RingOutputs sum = rs.outputs();
	CHECK(sum.held == 4);
	CHECK(sum.released == 12);
	CHECK(sum.hold_ns_total == 5700);

	// The consumer's own mapping of the same memfd sees them.
	RingSet peer;
	REQUIRE(RingSet::MapMemfd(rs.fd(), rs.event_fd(), &peer).ok());
	CHECK(peer.outputs().released == 12);
	RingPublishOutputs(rs.ring(0), {0, 13, 5100});
	CHECK(peer.outputs().held == 1);
	CHECK(peer.outputs().released == 15);
	CHECK(peer.outputs().hold_ns_total == 5800);
}

TEST_CASE("a sleeping consumer is always woken: ping-pong under stress")
{
	// The producer writes one record only after the consumer has read the
	// previous one, so every record finds the ring empty and the consumer
	// about to sleep: the worst case for a lost wakeup. A lost one shows
	// as a Wait() that runs into its timeout although a record was
	// published.
	RingSet rs;
	REQUIRE(RingSet::CreateMemfd(1, 4096, &rs).ok());
	RingProducer p(rs.ring(0), rs.event_fd());
	RingConsumer c(rs.ring(0));
	const uint64_t rounds = 20000;
	std::atomic<uint64_t> read{0};
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> write_failures{0};
	std::thread prod([&] {
		for (uint64_t i = 0; i < rounds && !stop; i++) {
			while (read.load() != i && !stop)
				std::this_thread::yield();
			auto r = Pio(5, i);
			if (!stop && !p.Write(&r, sizeof(r)))
				write_failures++;
		}
	});
	int timeouts = 0;
	uint64_t got = 0;
	while (got < rounds && timeouts == 0) {
		size_t n;
		REQUIRE(c.Drain([&](const kvm_ft_rec_hdr &) { got++; }, &n).ok());
		read.store(got);
		if (!n && got < rounds && !rs.Wait(5000))
			timeouts++;
	}
	stop = true;
	prod.join();
	CHECK(timeouts == 0);
	CHECK(write_failures == 0);
	CHECK(got == rounds);
}
