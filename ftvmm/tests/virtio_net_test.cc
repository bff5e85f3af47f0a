// virtio_net_test.cc - virtio-net against a made-up guest memory (no KVM)
// and a datagram socket pair standing for the tap: registers, features,
// MAC, transmit and receive, malformed chains, the output rule's modes
// (held until the ACK, kept in replay until the log says sent), state
// save/load.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "virtio/net_link.h"
#include "virtio/net.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace {
constexpr uint64_t kRam = 1 << 20;
constexpr uint32_t kQ = 8;
// Per queue q: descriptors, avail, used at these bases + q * 0x10000.
constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000, kBuf = 0x80000;

struct Rig {
	std::vector<uint8_t> ram = std::vector<uint8_t>(kRam);
	std::unique_ptr<NetLink> link;
	std::unique_ptr<VirtioNet> dev;
	int peer = -1;	// the "wire": what the tap's other side sees
	int irqs = 0;
	uint16_t idx[2] = {0, 0};

	Rig()
	{
		int sv[2];
		REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
		peer = sv[1];
		REQUIRE_OK(NetLink::FromFd(UniqueFd(sv[0]), "test", &link));
		dev = std::make_unique<VirtioNet>(GuestMemory{ram.data(), kRam, {}}, link.get(),
						  VirtioNet::Mac{2, 0, 0, 0xaa, 0xbb, 0xcc},
						  [this] { irqs++; });
	}
	~Rig() { close(peer); }
	uint32_t R(uint64_t off)
	{
		uint32_t v;
		dev->Read(off, reinterpret_cast<uint8_t *>(&v), 4);
		return v;
	}
	void W(uint64_t off, uint32_t v) { dev->Write(off, reinterpret_cast<uint8_t *>(&v), 4); }
	static uint64_t Q(uint64_t base, int q) { return base + 0x10000 * q; }
	void Setup()
	{
		W(0x70, 0), W(0x70, 1), W(0x70, 3);
		W(0x24, 0), W(0x20, 1 << 5), W(0x24, 1), W(0x20, 1);
		W(0x70, 11);
		REQUIRE(R(0x70) == 11);
		for (int q = 0; q < 2; q++) {
			W(0x30, q), W(0x38, kQ);
			W(0x80, Q(kDesc, q)), W(0x84, 0), W(0x90, Q(kAvail, q)), W(0x94, 0);
			W(0xa0, Q(kUsed, q)), W(0xa4, 0);
			W(0x44, 1);
			REQUIRE(R(0x44) == 1);
		}
		W(0x70, 15);
	}
	void Desc(int q, int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0)
	{
		uint8_t *d = &ram[Q(kDesc, q) + 16 * i];
		memcpy(d, &addr, 8), memcpy(d + 8, &len, 4), memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
	}
	void Avail(int q, uint16_t head)
	{
		memcpy(&ram[Q(kAvail, q) + 4 + 2 * (idx[q] % kQ)], &head, 2);
		idx[q]++;
		memcpy(&ram[Q(kAvail, q) + 2], &idx[q], 2);
	}
	uint16_t UsedIdx(int q) { return ram[Q(kUsed, q) + 2] | ram[Q(kUsed, q) + 3] << 8; }
	uint32_t UsedLen(int q, uint16_t i)
	{
		uint32_t v;
		memcpy(&v, &ram[Q(kUsed, q) + 4 + 8 * (i % kQ) + 4], 4);
		return v;
	}
	// Sends a frame of n bytes (byte k = fill + k) from descriptor i.
	void Tx(int i, size_t n, uint8_t fill)
	{
		uint64_t at = kBuf + 0x1000 * i;
		memset(&ram[at], 0, VirtioNet::kHdr);
		for (size_t k = 0; k < n; k++)
			ram[at + VirtioNet::kHdr + k] = static_cast<uint8_t>(fill + k);
		Desc(1, i, at, static_cast<uint32_t>(VirtioNet::kHdr + n), 0);
		Avail(1, static_cast<uint16_t>(i));
		W(0x50, 1);
	}
	// The next frame on the wire, or empty.
	std::vector<uint8_t> Wire()
	{
		std::vector<uint8_t> f(2048);
		ssize_t n = recv(peer, f.data(), f.size(), MSG_DONTWAIT);
		f.resize(n > 0 ? n : 0);
		return f;
	}
	static std::vector<uint8_t> Frame(size_t n, uint8_t fill)
	{
		std::vector<uint8_t> f(n);
		for (size_t k = 0; k < n; k++)
			f[k] = static_cast<uint8_t>(fill + k);
		return f;
	}
	bool NeedsReset() { return R(0x70) & VirtioNet::kNeedsReset; }
};
} // namespace

TEST_CASE("virtio-net: identification, features, MAC")
{
	Rig g;
	CHECK(g.R(0x0) == 0x74726976);
	CHECK(g.R(0x4) == 2);
	CHECK(g.R(0x8) == 1);
	g.W(0x14, 0);
	CHECK(g.R(0x10) == 1u << 5);
	g.W(0x14, 1);
	CHECK(g.R(0x10) == 1);
	for (int q = 0; q < 2; q++) {
		g.W(0x30, q);
		CHECK(g.R(0x34) == 256);
	}
	g.W(0x30, 2);
	CHECK(g.R(0x34) == 0);
	uint8_t mac[6];
	g.dev->Read(0x100, mac, 6);
	CHECK(std::vector<uint8_t>(mac, mac + 6) == std::vector<uint8_t>{2, 0, 0, 0xaa, 0xbb, 0xcc});
	uint8_t past[4] = {1, 1, 1, 1};
	g.dev->Read(0x106, past, 4);
	CHECK(past[0] == 0);	// no status field offered

	SECTION("features not offered are refused") {
		g.W(0x70, 3);
		g.W(0x24, 0), g.W(0x20, 1 << 5 | 1 << 0);	// + CSUM
		g.W(0x24, 1), g.W(0x20, 1);
		g.W(0x70, 11);
		CHECK(g.R(0x70) == 3);
	}
}

TEST_CASE("virtio-net: transmit goes to the wire at the notify")
{
	Rig g;
	g.Setup();
	g.Tx(0, 60, 7);
	CHECK(g.UsedIdx(1) == 1);
	CHECK(g.UsedLen(1, 0) == 0);
	CHECK(g.irqs == 1);
	CHECK(g.R(0x60) == 1);
	CHECK(g.Wire() == Rig::Frame(60, 7));
	CHECK(g.dev->tx_frames() == 1);

	SECTION("header and frame split over descriptors") {
		uint64_t a = kBuf + 0x8000;
		memset(&g.ram[a], 0, 12);
		auto f = Rig::Frame(100, 3);
		memcpy(&g.ram[a + 0x100], f.data(), 40);
		memcpy(&g.ram[a + 0x200], f.data() + 40, 60);
		g.Desc(1, 1, a, 12, 1, 2);
		g.Desc(1, 2, a + 0x100, 40, 1, 3);
		g.Desc(1, 3, a + 0x200, 60, 0);
		g.Avail(1, 1);
		g.W(0x50, 1);
		CHECK(g.Wire() == f);
	}
	SECTION("bad frames complete without being sent") {
		g.Tx(1, 13, 0);			// shorter than an Ethernet header
		g.Tx(2, 1515, 0);		// longer than 1514
		g.Desc(1, 3, kBuf, 12 + 60, 2);	// device-writable
		g.Avail(1, 3);
		g.W(0x50, 1);
		CHECK(g.UsedIdx(1) == 4);
		CHECK(g.dev->tx_errors() == 3);
		CHECK(g.Wire().empty());
		CHECK(!g.NeedsReset());
		g.Tx(4, 64, 1);
		CHECK(g.Wire() == Rig::Frame(64, 1));
	}
	SECTION("a loop in a chain needs reset") {
		g.Desc(1, 1, kBuf, 12, 1, 2);
		g.Desc(1, 2, kBuf, 60, 1, 1);
		g.Avail(1, 1);
		g.W(0x50, 1);
		CHECK(g.NeedsReset());
		g.Tx(3, 64, 1);
		CHECK(g.Wire().empty());	// ignored until reset
	}
	SECTION("a buffer outside RAM needs reset") {
		g.Desc(1, 1, kRam - 16, 12 + 60, 0);
		g.Avail(1, 1);
		g.W(0x50, 1);
		CHECK(g.NeedsReset());
	}
}

TEST_CASE("virtio-net: receive into the guest's buffers")
{
	Rig g;
	g.Setup();
	CHECK(!g.dev->CanReceive());
	auto f = Rig::Frame(98, 5);
	CHECK(g.dev->Receive(f.data(), f.size()) == VirtioNet::kNoBuffer);
	g.Desc(0, 0, kBuf, 2048, 2);
	g.Avail(0, 0);
	g.W(0x50, 0);
	CHECK(g.dev->CanReceive());
	CHECK(g.dev->Receive(f.data(), f.size()) == VirtioNet::kDelivered);
	CHECK(g.UsedIdx(0) == 1);
	CHECK(g.UsedLen(0, 0) == 12 + 98);
	CHECK(g.ram[kBuf + 10] == 1);	// num_buffers
	CHECK(g.ram[kBuf] == 0);
	CHECK(std::vector<uint8_t>(&g.ram[kBuf + 12], &g.ram[kBuf + 12 + 98]) == f);
	CHECK(g.irqs == 1);
	CHECK(!g.dev->CanReceive());

	SECTION("a buffer too small keeps the buffer and drops the frame") {
		g.Desc(0, 1, kBuf, 12 + 50, 2);
		g.Avail(0, 1);
		CHECK(g.dev->Receive(f.data(), f.size()) == VirtioNet::kDropped);
		CHECK(g.dev->rx_dropped() == 1);
		CHECK(g.UsedIdx(0) == 1);
		CHECK(g.dev->CanReceive());
		auto small = Rig::Frame(50, 1);
		CHECK(g.dev->Receive(small.data(), small.size()) == VirtioNet::kDelivered);
	}
	SECTION("a device-readable receive buffer needs reset") {
		g.Desc(0, 1, kBuf, 2048, 0);
		g.Avail(0, 1);
		CHECK(g.dev->Receive(f.data(), f.size()) == VirtioNet::kBadChain);
		CHECK(g.NeedsReset());
		CHECK(!g.dev->CanReceive());
	}
	SECTION("an avail index far ahead needs reset") {
		uint16_t far = 100;
		memcpy(&g.ram[kAvail + 2], &far, 2);
		CHECK(g.dev->Receive(f.data(), f.size()) == VirtioNet::kBadChain);
		CHECK(g.NeedsReset());
	}
	SECTION("a reset forgets the queues") {
		g.W(0x70, 0);
		CHECK(g.R(0x70) == 0);
		g.W(0x30, 0);
		CHECK(g.R(0x44) == 0);
		CHECK(!g.dev->CanReceive());
	}
}

TEST_CASE("net link: frames from the wire, oversized ones dropped")
{
	Rig g;
	uint8_t buf[NetLink::kMaxFrame];
	CHECK(g.link->Receive(buf) == 0);
	auto f = Rig::Frame(200, 9);
	REQUIRE(send(g.peer, f.data(), f.size(), 0) == 200);
	std::vector<uint8_t> big(1600, 1), tiny(10, 1);
	REQUIRE(send(g.peer, big.data(), big.size(), 0) == 1600);
	REQUIRE(send(g.peer, tiny.data(), tiny.size(), 0) == 10);
	REQUIRE(send(g.peer, f.data(), 60, 0) == 60);
	CHECK(g.link->Receive(buf) == 200);
	CHECK(std::vector<uint8_t>(buf, buf + 200) == f);
	CHECK(g.link->Receive(buf) == 60);	// the big and tiny ones dropped
	CHECK(g.link->stats().rx_discarded == 2);
	REQUIRE(send(g.peer, f.data(), 60, 0) == 60);
	CHECK(g.link->Discard() == 1);
	CHECK(g.link->Receive(buf) == 0);
}

TEST_CASE("net link: held frames leave only when the ACK covers their tag")
{
	Rig g;
	g.Setup();
	g.link->set_mode(NetLink::kHold);
	g.link->set_tag(100, 1);
	g.Tx(0, 60, 1);
	g.link->set_tag(200, 2);
	g.Tx(1, 60, 2);
	CHECK(g.Wire().empty());
	CHECK(g.link->held() == 2);
	g.link->Release(99);
	CHECK(g.Wire().empty());
	g.link->Release(150);
	CHECK(g.Wire() == Rig::Frame(60, 1));
	CHECK(g.Wire().empty());
	CHECK(g.link->sent_pos() == 1);
	g.link->Release(200);
	CHECK(g.Wire() == Rig::Frame(60, 2));
	CHECK(g.link->held() == 0);
	auto st = g.link->stats();
	CHECK(st.hold.released == 2);
	CHECK(st.tx_sent == 2);
	CHECK(g.link->sent_pos() == 2);
}

TEST_CASE("net link: a replayer keeps frames until the log says sent")
{
	Rig g;
	g.Setup();
	g.link->set_mode(NetLink::kReplay);
	for (int i = 0; i < 4; i++) {
		g.link->set_tag(0, 10 + i);
		g.Tx(i, 60, static_cast<uint8_t>(i));
	}
	CHECK(g.Wire().empty());
	CHECK(g.link->held() == 4);
	g.link->Release(UINT64_MAX);	// not in replay
	CHECK(g.link->held() == 4);
	g.link->Forget(11);
	CHECK(g.link->held() == 2);
	CHECK(g.link->SendReplayed() == 2);	// go-live
	CHECK(g.Wire() == Rig::Frame(60, 2));
	CHECK(g.Wire() == Rig::Frame(60, 3));
	CHECK(g.Wire().empty());
	uint8_t mac[6] = {2, 0, 0, 1, 2, 3};
	g.link->Announce(mac);
	auto rarp = g.Wire();
	REQUIRE(rarp.size() == 60);
	CHECK(rarp[12] == 0x80);
	CHECK(rarp[13] == 0x35);
	CHECK(std::vector<uint8_t>(&rarp[6], &rarp[12]) == std::vector<uint8_t>(mac, mac + 6));

	SECTION("bounded without NET_SENT records") {
		g.link->set_mode(NetLink::kReplay);
		for (size_t i = 0; i < NetLink::kReplayKeep + 5; i++)
			g.link->Send(Rig::Frame(60, 0).data(), 60);
		CHECK(g.link->held() == NetLink::kReplayKeep);
		CHECK(g.link->stats().replay_overflow == 5);
	}
}

TEST_CASE("net link: SMP epochs retag held frames, a secondary keeps an epoch's, less "
	  "those reported sent")
{
	Rig g;
	g.Setup();
	constexpr uint64_t kPending = UINT64_MAX;
	g.link->set_mode(NetLink::kHold);
	g.link->set_tag(kPending, 0);
	g.Tx(0, 60, 1);
	g.Tx(1, 60, 2);
	g.link->Release(UINT64_MAX - 1); // a pending epoch's frames never leave
	CHECK(g.Wire().empty());
	g.link->Retag(kPending, 100);	// the epoch's end is logged at 100
	g.Tx(2, 60, 3);			// the next epoch's
	g.link->Release(100);
	CHECK(g.Wire() == Rig::Frame(60, 1));
	CHECK(g.Wire() == Rig::Frame(60, 2));
	CHECK(g.Wire().empty());
	CHECK(g.link->sent_count() == 2);
	auto pending = g.link->pending();
	REQUIRE(pending.size() == 1);
	CHECK(pending[0].seq == 2);

	// A secondary: each epoch's state replaces the frames kept.
	Rig s;
	s.Setup();
	s.link->set_mode(NetLink::kEpochs);
	std::vector<NetLink::Frame> epoch(3);
	for (uint64_t i = 0; i < 3; i++) {
		epoch[i].seq = i;
		epoch[i].data = Rig::Frame(60, static_cast<uint8_t>(i + 1));
	}
	s.link->SetPending(epoch);
	CHECK(s.link->held() == 3);
	CHECK(s.link->stats().replay_kept == 3);
	s.link->SetPending({epoch[1], epoch[2]});
	CHECK(s.link->held() == 2);
	s.link->ForgetSent(2);		// NET_SENT: seq 0 and 1 are on the wire
	CHECK(s.link->held() == 1);
	s.link->SetPending(epoch);	// an older state: the sent ones stay out
	CHECK(s.link->held() == 1);
	s.link->Release(UINT64_MAX);	// no ACK releases in kEpochs
	CHECK(s.Wire().empty());
	CHECK(s.link->SendReplayed() == 1);
	CHECK(s.Wire() == Rig::Frame(60, 3));
	CHECK(s.Wire().empty());
}

TEST_CASE("virtio-net: state save/load, held frames included")
{
	Rig a;
	a.Setup();
	a.link->set_mode(NetLink::kHold);
	a.link->set_tag(5, 3);
	a.Tx(0, 70, 4);
	a.Desc(0, 0, kBuf, 2048, 2);
	a.Avail(0, 0);
	std::vector<uint8_t> st;
	a.dev->Save(&st);

	Rig b;
	b.ram = a.ram;
	b.link->set_mode(NetLink::kHold);
	REQUIRE_OK(b.dev->Load(st.data(), st.size()));
	CHECK(b.R(0x70) == 15);
	CHECK(b.link->held() == 1);
	CHECK(b.link->next_seq() == 1);
	CHECK(b.dev->CanReceive());
	std::vector<uint8_t> st2;
	b.dev->Save(&st2);
	CHECK(st2 == st);
	b.link->Release(0);	// a loaded frame is released by the next ACK
	CHECK(b.Wire() == Rig::Frame(70, 4));

	SECTION("a replayer adds only frames older than its own") {
		Rig c;
		c.ram = a.ram;
		c.link->set_mode(NetLink::kReplay);
		REQUIRE_OK(c.dev->Load(st.data(), st.size()));
		CHECK(c.link->held() == 1);
		REQUIRE_OK(c.dev->Load(st.data(), st.size()));
		CHECK(c.link->held() == 1);
	}
	SECTION("malformed or foreign states are refused, nothing changed") {
		Rig c;
		for (size_t n = 0; n < st.size(); n++)
			CHECK(!c.dev->Load(st.data(), n).ok());
		auto bad = st;
		bad[0] ^= 1;	// another MAC
		CHECK(!c.dev->Load(bad.data(), bad.size()).ok());
		bad = st;
		bad.push_back(0);
		CHECK(!c.dev->Load(bad.data(), bad.size()).ok());
		CHECK(c.R(0x70) == 0);
		CHECK(c.link->held() == 0);
	}
}
