// virtio_blk_test.cc - virtio-blk against a made-up guest memory (no KVM):
// registers, feature negotiation, requests, malformed requests and
// chains, held writes, state save/load.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "virtio/disk.h"
#include "virtio/blk.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace {
constexpr uint64_t kRam = 1 << 20;
constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000;
constexpr uint64_t kHdr = 0x4000, kData = 0x10000, kStatus = 0x5000;
constexpr uint32_t kQ = 8;
constexpr uint64_t kSectors = 128;

std::vector<uint8_t> Slurp(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

// A guest with its RAM, a driver's view of the device and a disk file
// whose sector k is filled with byte k.
struct Rig {
	std::string path;
	std::vector<uint8_t> ram = std::vector<uint8_t>(kRam);
	std::unique_ptr<Disk> disk;
	std::unique_ptr<VirtioBlk> dev;
	int irqs = 0;
	uint16_t idx = 0;

	Rig()
	{
		static int n;
		path = "/tmp/ftvmm-blk-" + std::to_string(getpid()) + "-" + std::to_string(n++);
		std::vector<uint8_t> img(kSectors * 512);
		for (size_t i = 0; i < img.size(); i++)
			img[i] = static_cast<uint8_t>(i / 512);
		std::ofstream(path, std::ios::binary).write(reinterpret_cast<char *>(img.data()),
							    img.size());
		REQUIRE_OK(Disk::Open(path, &disk));
		dev = std::make_unique<VirtioBlk>(GuestMemory{ram.data(), kRam, {}}, disk.get(),
						  [this] { irqs++; });
	}
	~Rig() { unlink(path.c_str()); }
	uint32_t R(uint64_t off)
	{
		uint32_t v;
		dev->Read(off, reinterpret_cast<uint8_t *>(&v), 4);
		return v;
	}
	void W(uint64_t off, uint32_t v) { dev->Write(off, reinterpret_cast<uint8_t *>(&v), 4); }
	// The disk file grown (sparse) to `bytes`, reopened.
	void Grow(uint64_t bytes)
	{
		dev.reset();
		disk.reset();
		REQUIRE(truncate(path.c_str(), static_cast<off_t>(bytes)) == 0);
		REQUIRE_OK(Disk::Open(path, &disk));
		dev = std::make_unique<VirtioBlk>(GuestMemory{ram.data(), kRam, {}}, disk.get(),
						  [this] { irqs++; });
	}
	void Setup(uint32_t qn = kQ)
	{
		W(0x70, 0), W(0x70, 1), W(0x70, 3);
		W(0x24, 0), W(0x20, 1 << 9), W(0x24, 1), W(0x20, 1);
		W(0x70, 11);
		REQUIRE(R(0x70) == 11);
		W(0x30, 0), W(0x38, qn);
		W(0x80, kDesc), W(0x84, 0), W(0x90, kAvail), W(0x94, 0), W(0xa0, kUsed), W(0xa4, 0);
		W(0x44, 1);
		W(0x70, 15);
		idx = 0;
	}
	void Desc(int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
	{
		uint8_t *d = &ram[kDesc + 16 * i];
		memcpy(d, &addr, 8), memcpy(d + 8, &len, 4), memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
	}
	void Header(uint32_t type, uint64_t sector)
	{
		memset(&ram[kHdr], 0, 16);
		memcpy(&ram[kHdr], &type, 4);
		memcpy(&ram[kHdr + 8], &sector, 8);
		ram[kStatus] = 0xee;
	}
	// header, data (device-writable if in), status
	void Chain(uint32_t type, uint64_t sector, uint32_t len, bool in)
	{
		Header(type, sector);
		Desc(0, kHdr, 16, 1, 1);
		Desc(1, kData, len, 1 | (in ? 2 : 0), 2);
		Desc(2, kStatus, 1, 2, 0);
	}
	void Submit(uint16_t head = 0)
	{
		memcpy(&ram[kAvail + 4 + 2 * (idx % kQ)], &head, 2);
		idx++;
		memcpy(&ram[kAvail + 2], &idx, 2);
		W(0x50, 0);
	}
	uint16_t UsedIdx() { return ram[kUsed + 2] | ram[kUsed + 3] << 8; }
	uint32_t UsedLen(uint16_t i)
	{
		uint32_t v;
		memcpy(&v, &ram[kUsed + 4 + 8 * (i % kQ) + 4], 4);
		return v;
	}
	bool NeedsReset() { return R(0x70) & VirtioBlk::kNeedsReset; }
};
} // namespace

TEST_CASE("virtio-blk: identification, features, capacity")
{
	Rig g;
	CHECK(g.R(0x0) == 0x74726976);
	CHECK(g.R(0x4) == 2);
	CHECK(g.R(0x8) == 2);
	g.W(0x14, 0);
	CHECK(g.R(0x10) == (1u << 9 | 1u << 2 | 1u << 1));
	g.W(0x14, 1);
	CHECK(g.R(0x10) == 1);
	g.W(0x14, 2);
	CHECK(g.R(0x10) == 0);
	CHECK(g.R(0x34) == 256);
	g.W(0x30, 1);
	CHECK(g.R(0x34) == 0);
	CHECK(g.R(0x100) == kSectors);
	CHECK(g.R(0x104) == 0);
	CHECK(g.R(0x108) == VirtioBlk::kSizeMax);	// size_max
	CHECK(g.R(0x10c) == VirtioBlk::kSegMax);	// seg_max
	uint64_t cap = 0;
	g.dev->Read(0x100, reinterpret_cast<uint8_t *>(&cap), 8);
	CHECK(cap == kSectors);
	uint16_t narrow = 0xffff;
	g.dev->Read(0x0, reinterpret_cast<uint8_t *>(&narrow), 2);
	CHECK(narrow == 0);	// registers are 32-bit only

	SECTION("FEATURES_OK needs VERSION_1") {
		g.W(0x70, 3);
		g.W(0x24, 0), g.W(0x20, 1 << 9);
		g.W(0x70, 11);
		CHECK(g.R(0x70) == 3);
	}
	SECTION("FEATURES_OK refuses features not offered") {
		g.W(0x70, 3);
		g.W(0x24, 0), g.W(0x20, 1 << 5);
		g.W(0x24, 1), g.W(0x20, 1);
		g.W(0x70, 11);
		CHECK(g.R(0x70) == 3);
	}
	SECTION("accepted") {
		g.Setup();
		CHECK(g.R(0x70) == 15);
		CHECK(g.R(0x44) == 1);
	}
}

TEST_CASE("virtio-blk: read, write, flush, get-id, unsupported")
{
	Rig g;
	g.Setup();
	// read sectors 3-4 into two split buffers of 512 + 512
	g.Header(0, 3);
	g.Desc(0, kHdr, 16, 1, 1);
	g.Desc(1, kData, 512, 3, 2);
	g.Desc(2, kData + 0x2000, 512, 3, 3);
	g.Desc(3, kStatus, 1, 2, 0);
	g.Submit();
	CHECK(g.UsedIdx() == 1);
	CHECK(g.UsedLen(0) == 1025);
	CHECK(g.ram[kStatus] == 0);
	CHECK(g.ram[kData] == 3);
	CHECK(g.ram[kData + 511] == 3);
	CHECK(g.ram[kData + 0x2000] == 4);
	CHECK(g.irqs == 1);
	CHECK(g.R(0x60) == 1);
	g.W(0x64, 1);
	CHECK(g.R(0x60) == 0);
	CHECK(g.dev->read_bytes() == 1024);

	// write sector 7 (header and data in one descriptor), read it back
	g.Header(1, 7);
	memset(&g.ram[kHdr + 16], 0x5a, 512);
	g.Desc(0, kHdr, 16 + 512, 1, 1);
	g.Desc(1, kStatus, 1, 2, 0);
	g.Submit();
	CHECK(g.ram[kStatus] == 0);
	CHECK(g.UsedLen(1) == 1);
	CHECK(Slurp(g.path)[7 * 512 + 100] == 0x5a);	// kDirect: in the file at once
	g.Chain(0, 7, 512, true);
	g.Submit();
	CHECK(g.ram[kData + 200] == 0x5a);

	g.Header(4, 0);			// flush
	g.Desc(0, kHdr, 16, 1, 1);
	g.Desc(1, kStatus, 1, 2, 0);
	g.Submit();
	CHECK(g.ram[kStatus] == 0);

	g.Chain(8, 0, 20, true);	// get id
	g.Submit();
	CHECK(g.ram[kStatus] == 0);
	CHECK(std::string(reinterpret_cast<char *>(&g.ram[kData])) == "kvm-ft virtio-blk");
	CHECK(g.UsedLen(4) == 21);

	g.Chain(99, 0, 512, true);	// unknown type
	g.Submit();
	CHECK(g.ram[kStatus] == 2);
	CHECK(g.UsedIdx() == 6);
	CHECK(g.irqs == 6);
	CHECK_FALSE(g.NeedsReset());
}

TEST_CASE("virtio-blk: bad requests complete with IOERR, the device goes on")
{
	Rig g;
	g.Setup();
	struct Case {
		const char *what;
		uint32_t type;
		uint64_t sector;
		uint32_t len;
		bool in;
	} cases[] = {
		{"read length not a multiple of 512", 0, 0, 100, true},
		{"write length not a multiple of 512", 1, 0, 513, false},
		{"read at the capacity", 0, kSectors, 512, true},
		{"read running past the end", 0, kSectors - 1, 1024, true},
		{"write past the end", 1, kSectors, 512, false},
		{"sector overflowing", 0, UINT64_MAX, 512, true},
		{"read with a device-readable data buffer", 0, 0, 512, false},
		{"flush with data", 4, 0, 512, false},
	};
	uint16_t n = 0;
	for (const Case &c : cases) {
		INFO(c.what);
		g.Chain(c.type, c.sector, c.len, c.in);
		g.Submit();
		n++;
		CHECK(g.UsedIdx() == n);
		CHECK(g.ram[kStatus] == 1);
		CHECK(g.UsedLen(n - 1) == 1);
		CHECK_FALSE(g.NeedsReset());
	}
	SECTION("device-readable after device-writable") {
		g.Header(1, 0);
		g.Desc(0, kHdr, 16, 1, 1);
		g.Desc(1, kData, 512, 3, 2);
		g.Desc(2, kData + 512, 512, 1, 3);
		g.Desc(3, kStatus, 1, 2, 0);
		g.Submit();
		CHECK(g.ram[kStatus] == 1);
	}
	SECTION("header too short") {
		g.Header(0, 0);
		g.Desc(0, kHdr, 8, 1, 1);
		g.Desc(1, kStatus, 1, 2, 0);
		g.Submit();
		CHECK(g.ram[kStatus] == 1);
	}
	CHECK(Slurp(g.path)[0] == 0);	// nothing was written
	g.Chain(0, 2, 512, true);	// still works
	g.Submit();
	CHECK(g.ram[kStatus] == 0);
	CHECK(g.ram[kData] == 2);
}

TEST_CASE("virtio-blk: a request beyond SIZE_MAX or SEG_MAX completes with IOERR, nothing held")
{
	// 256 descriptors: the header, 254 data buffers all aliasing the same
	// 896 KiB of guest RAM (222 MiB of request), the status; on a large
	// sparse disk, writes held as on a primary with a peer.
	Rig g;
	g.Grow(uint64_t{1} << 32);
	g.Setup(256);
	g.disk->set_mode(Disk::kHold);
	constexpr uint32_t kAlias = kRam - kData - 0x10000;
	auto submit = [&](uint32_t type, uint16_t ndata, uint32_t len, bool in) {
		g.Header(type, 8);
		g.Desc(0, kHdr, 16, 1, 1);
		for (uint16_t i = 1; i <= ndata; i++)
			g.Desc(i, kData, len, static_cast<uint16_t>(1 | (in ? 2 : 0)), i + 1);
		g.Desc(ndata + 1, kStatus, 1, 2, 0);
		g.Submit();
		REQUIRE_FALSE(g.NeedsReset());
		uint32_t used_len;
		memcpy(&used_len, &g.ram[kUsed + 4 + 8 * ((g.UsedIdx() - 1) % 256) + 4], 4);
		return std::pair{g.ram[kStatus], used_len};
	};
	SECTION("too many segments, each too long: write") {
		CHECK(submit(1, 254, kAlias, false).first == 1);
		CHECK(g.disk->held_bytes() == 0);
		CHECK(g.dev->written_bytes() == 0);
	}
	SECTION("too many segments, each too long: read") {
		auto [st, len] = submit(0, 254, kAlias, true);
		CHECK(st == 1);
		CHECK(len == 1);
		CHECK(g.dev->read_bytes() == 0);
	}
	SECTION("SEG_MAX + 1 segments of 512 bytes") {
		CHECK(submit(1, VirtioBlk::kSegMax + 1, 512, false).first == 1);
		CHECK(g.disk->held_bytes() == 0);
	}
	SECTION("one segment of SIZE_MAX + 512 bytes") {
		CHECK(submit(1, 1, VirtioBlk::kSizeMax + 512, false).first == 1);
		CHECK(g.disk->held_bytes() == 0);
	}
	SECTION("SEG_MAX segments of SIZE_MAX: the largest request, done") {
		constexpr uint64_t kMost = uint64_t{VirtioBlk::kSegMax} * VirtioBlk::kSizeMax;
		CHECK(submit(1, VirtioBlk::kSegMax, VirtioBlk::kSizeMax, false).first == 0);
		CHECK(g.disk->held_bytes() == kMost);
		auto [st, len] = submit(0, VirtioBlk::kSegMax, VirtioBlk::kSizeMax, true);
		CHECK(st == 0);
		CHECK(len == kMost + 1);
	}
}

TEST_CASE("virtio-blk: untrustworthy chains set DEVICE_NEEDS_RESET")
{
	Rig g;
	g.Setup();
	auto what = GENERATE(as<std::string>{}, "data outside RAM", "data in the device hole",
			     "address overflow", "loop", "next out of range", "head out of range",
			     "indirect", "no status byte", "status device-readable",
			     "avail index ahead");
	INFO(what);
	g.Chain(0, 0, 512, true);
	uint16_t head = 0;
	if (what == "data outside RAM")
		g.Desc(1, kRam - 256, 512, 3, 2);
	else if (what == "data in the device hole")
		g.Desc(1, VirtioBlk::kBase, 512, 3, 2);
	else if (what == "address overflow")
		g.Desc(1, UINT64_MAX - 100, 512, 3, 2);
	else if (what == "loop")
		g.Desc(2, kStatus, 1, 3, 0);
	else if (what == "next out of range")
		g.Desc(1, kData, 512, 3, kQ);
	else if (what == "head out of range")
		head = kQ;
	else if (what == "indirect")
		g.Desc(1, kData, 512, 3 | 4, 2);
	else if (what == "no status byte")
		g.Desc(2, kStatus, 0, 2, 0);
	else if (what == "status device-readable")
		g.Desc(2, kStatus, 1, 0, 0);
	if (what == "avail index ahead") {
		uint16_t far = kQ + 1;
		memcpy(&g.ram[kAvail + 2], &far, 2);
		g.W(0x50, 0);
	} else {
		g.Submit(head);
	}
	CHECK(g.NeedsReset());
	CHECK(g.UsedIdx() == 0);
	CHECK(g.ram[kStatus] == 0xee);
	CHECK(g.R(0x60) == 2);		// configuration change
	CHECK(g.irqs == 1);
	CHECK(Slurp(g.path)[0] == 0);
	g.Chain(0, 1, 512, true);	// ignored until reset
	g.Submit();
	CHECK(g.UsedIdx() == 0);
	g.Setup();			// reset and set up again
	CHECK_FALSE(g.NeedsReset());
	memset(&g.ram[kAvail], 0, 4);
	g.Chain(0, 1, 512, true);
	g.Submit();
	CHECK(g.UsedIdx() == 1);
	CHECK(g.ram[kStatus] == 0);
	CHECK(g.ram[kData] == 1);
}

TEST_CASE("virtio-blk: a bad queue set-up needs reset")
{
	Rig g;
	auto bad = GENERATE(0, 1, 2, 3);
	g.W(0x70, 3);
	g.W(0x24, 1), g.W(0x20, 1);
	g.W(0x70, 11);
	g.W(0x38, bad == 0 ? 6 : kQ);	// not a power of 2
	g.W(0x80, bad == 1 ? kDesc + 8 : kDesc);
	g.W(0x90, kAvail);
	g.W(0xa0, bad == 2 ? kRam - 16 : kUsed);	// used ring past RAM
	if (bad == 3)
		g.W(0x38, 512);
	g.W(0x44, 1);
	CHECK(g.NeedsReset());
	CHECK(g.R(0x44) == 0);
}

TEST_CASE("virtio-blk: a failing reader stops the batch uncompleted")
{
	Rig g;
	g.Setup();
	g.dev->set_reader([](uint64_t, uint8_t *, uint32_t) {
		return Status::Error(EPROTO, "divergence at position 7: test");
	});
	g.Chain(0, 0, 512, true);
	g.Submit();
	Status s = g.dev->TakeError();
	CHECK(s.err() == EPROTO);
	CHECK(g.UsedIdx() == 0);
	CHECK(g.irqs == 0);
	CHECK(g.dev->TakeError().ok());
}

TEST_CASE("disk: held writes reach the file only when the ACK covers them, in order")
{
	Rig g;
	g.disk->set_mode(Disk::kHold);
	std::vector<uint8_t> a(512, 0xaa), b(1024, 0xbb);
	g.disk->set_tag(10);
	REQUIRE_OK(g.disk->WriteAt(5, a.data(), 512));
	g.disk->set_tag(20);
	REQUIRE(g.disk->WriteAt(4, b.data(), 1024).ok());	// overwrites sector 5
	std::vector<uint8_t> r(1536);
	REQUIRE_OK(g.disk->Read(4, r.data(), 1536));
	CHECK(r[0] == 0xbb);
	CHECK(r[512] == 0xbb);		// the later write wins
	CHECK(r[1024] == 6);
	REQUIRE_OK(g.disk->Flush());
	auto f = Slurp(g.path);
	CHECK(f[5 * 512] == 5);		// nothing released yet
	REQUIRE_OK(g.disk->Release(9));
	CHECK(Slurp(g.path)[5 * 512] == 5);
	REQUIRE_OK(g.disk->Release(10));
	f = Slurp(g.path);
	CHECK(f[5 * 512] == 0xaa);
	CHECK(f[4 * 512] == 4);
	CHECK(g.disk->overlay().size() == 1);
	REQUIRE_OK(g.disk->Release(20));
	f = Slurp(g.path);
	CHECK(f[5 * 512] == 0xbb);
	CHECK(f[4 * 512] == 0xbb);
	CHECK(g.disk->overlay().empty());

	SECTION("a replayer holds whatever the ACK, until go-live") {
		g.disk->set_mode(Disk::kReplay);
		REQUIRE_OK(g.disk->WriteAt(9, a.data(), 512));
		REQUIRE_OK(g.disk->Release(UINT64_MAX));
		CHECK(Slurp(g.path)[9 * 512] == 9);
		REQUIRE_OK(g.disk->ApplyAll());
		CHECK(Slurp(g.path)[9 * 512] == 0xaa);
	}
	SECTION("a replayer on a private copy writes it at once, keeps nothing") {
		g.disk->set_mode(Disk::kReplayPrivate);
		REQUIRE_OK(g.disk->WriteAt(9, a.data(), 512));
		CHECK(Slurp(g.path)[9 * 512] == 0xaa);
		CHECK(g.disk->overlay().empty());
		CHECK(g.disk->held_bytes() == 0);
		REQUIRE_OK(g.disk->Flush());
		REQUIRE_OK(g.disk->ApplyAll());
		CHECK(Slurp(g.path)[9 * 512] == 0xaa);
	}
}

TEST_CASE("disk: written_pos on the primary, Forget on a replayer of the same file")
{
	Rig g;
	std::vector<uint8_t> a(512, 0xaa), b(512, 0xbb), c(512, 0xcc);
	SECTION("the primary: the position of the newest write the file holds") {
		g.disk->set_mode(Disk::kHold);
		CHECK(g.disk->written_pos() == 0);
		g.disk->set_tag(10);
		g.disk->set_pos(3);
		REQUIRE_OK(g.disk->WriteAt(1, a.data(), 512));
		g.disk->set_tag(20);
		g.disk->set_pos(7);
		REQUIRE_OK(g.disk->WriteAt(2, b.data(), 512));
		REQUIRE_OK(g.disk->Release(15));
		CHECK(g.disk->written_pos() == 3);
		REQUIRE_OK(g.disk->Release(20));
		CHECK(g.disk->written_pos() == 7);
		REQUIRE(g.disk->Release(30).ok());	// nothing new
		CHECK(g.disk->written_pos() == 7);
	}
	SECTION("a replayer drops the writes up to the position, in order") {
		g.disk->set_mode(Disk::kReplay);
		g.disk->set_pos(3);
		REQUIRE_OK(g.disk->WriteAt(1, a.data(), 512));
		REQUIRE_OK(g.disk->WriteAt(2, b.data(), 512));
		g.disk->set_pos(5);
		REQUIRE_OK(g.disk->WriteAt(1, c.data(), 512));
		CHECK(g.disk->replay_stats().peak == 3);
		g.disk->Forget(2);
		CHECK(g.disk->overlay().size() == 3);
		g.disk->Forget(3);
		CHECK(g.disk->overlay().size() == 1);
		CHECK(g.disk->replay_stats().dropped == 2);
		REQUIRE_OK(g.disk->ApplyAll());
		auto f = Slurp(g.path);
		CHECK(f[1 * 512] == 0xcc);
		CHECK(f[2 * 512] == 2);		// dropped: the primary's file has it
		CHECK(g.disk->replay_stats().applied == 1);
	}
	SECTION("the other modes ignore Forget") {
		g.disk->set_mode(Disk::kHold);
		g.disk->set_pos(3);
		REQUIRE_OK(g.disk->WriteAt(1, a.data(), 512));
		g.disk->Forget(UINT64_MAX);
		CHECK(g.disk->overlay().size() == 1);
		g.disk->set_mode(Disk::kReplayPrivate);
		g.disk->Forget(UINT64_MAX);
		CHECK(g.disk->overlay().size() == 1);
		CHECK(g.disk->replay_stats().dropped == 0);
	}
}

TEST_CASE("disk: held writes are counted as outputs, held and released")
{
	Rig g;
	std::vector<OutputCounts> seen;
	g.disk->set_publish([&](const OutputCounts &c) { seen.push_back(c); });
	std::vector<uint8_t> a(512, 0xaa);
	g.disk->set_mode(Disk::kDirect);
	REQUIRE_OK(g.disk->WriteAt(1, a.data(), 512));
	CHECK(seen.empty()); // not held: not an output of the rule
	g.disk->set_mode(Disk::kHold);
	g.disk->set_tag(10);
	REQUIRE_OK(g.disk->WriteAt(2, a.data(), 512));
	g.disk->set_tag(20);
	REQUIRE_OK(g.disk->WriteAt(3, a.data(), 512));
	REQUIRE(seen.size() == 2);
	CHECK(seen.back().held == 2);
	CHECK(seen.back().released == 0);
	REQUIRE_OK(g.disk->Release(5));
	CHECK(seen.size() == 2); // nothing covered, nothing published
	REQUIRE_OK(g.disk->Release(15));
	REQUIRE(seen.size() == 3);
	CHECK(seen.back().held == 1);
	CHECK(seen.back().released == 1);
	REQUIRE_OK(g.disk->Release(20));
	CHECK(seen.back().held == 0);
	CHECK(seen.back().released == 2);
	CHECK(seen.back().hold_ns_total > 0);
	const OutputStats st = g.disk->stats();
	CHECK(st.held == 0);
	CHECK(st.released == 2);
	CHECK(st.hold_ns_max > 0);
	CHECK(st.hold_ns_p50 <= st.hold_ns_max);
	CHECK(st.hold_ns_p50 > 0);
	// Go-live writes (ApplyAll) are not releases under the rule.
	g.disk->set_mode(Disk::kReplay);
	REQUIRE_OK(g.disk->WriteAt(4, a.data(), 512));
	REQUIRE_OK(g.disk->ApplyAll());
	CHECK(seen.back().released == 2);
	CHECK(g.disk->stats().released == 2);
}

TEST_CASE("virtio-blk: state save/load, pending writes included")
{
	Rig g;
	g.Setup();
	g.disk->set_mode(Disk::kHold);
	g.Header(1, 3);
	memset(&g.ram[kHdr + 16], 0x77, 512);
	g.Desc(0, kHdr, 16 + 512, 1, 1);
	g.Desc(1, kStatus, 1, 2, 0);
	g.Submit();
	REQUIRE(g.disk->overlay().size() == 1);
	std::vector<uint8_t> st;
	g.dev->Save(&st);

	SECTION("restored: registers and pending writes (written at once)") {
		Rig h;
		REQUIRE_OK(h.dev->Load(st.data(), st.size()));
		CHECK(h.R(0x70) == 15);
		CHECK(h.R(0x44) == 1);
		CHECK(h.R(0x60) == 1);
		CHECK(Slurp(h.path)[3 * 512] == 0x77);
		std::vector<uint8_t> again;
		h.dev->Save(&again);
		CHECK(again.size() == st.size() - 20 - 512);	// no pending write left
		memcpy(h.ram.data(), g.ram.data(), kRam);	// the queue continues
		h.idx = g.idx;
		h.Chain(0, 3, 512, true);
		h.Submit();
		CHECK(h.UsedIdx() == 2);
		CHECK(h.ram[kData] == 0x77);
	}
	SECTION("a replayer keeps its own overlay") {
		Rig h;
		h.disk->set_mode(Disk::kReplay);
		REQUIRE_OK(h.dev->Load(st.data(), st.size()));
		CHECK(h.disk->overlay().empty());
		CHECK(Slurp(h.path)[3 * 512] == 3);
	}
	SECTION("a replayer on a private copy ignores the pending writes too") {
		Rig h;
		h.disk->set_mode(Disk::kReplayPrivate);
		REQUIRE_OK(h.dev->Load(st.data(), st.size()));
		CHECK(h.disk->overlay().empty());
		CHECK(Slurp(h.path)[3 * 512] == 3);
	}
	SECTION("an SMP secondary's private copy gets the pending writes at once") {
		Rig h;
		h.disk->set_mode(Disk::kEpochsPrivate);
		REQUIRE_OK(h.dev->Load(st.data(), st.size()));
		CHECK(h.disk->overlay().empty());
		CHECK(Slurp(h.path)[3 * 512] == 0x77);
		CHECK(h.disk->next_seq() == 1);
		CHECK(h.disk->replay_stats().copied == 1);
		// the same epoch state again (the write is still pending on
		// the primary): not written twice
		REQUIRE_OK(h.dev->Load(st.data(), st.size()));
		CHECK(h.disk->replay_stats().copied == 1);
	}
	SECTION("pending writes out of sequence are refused") {
		Rig h;
		auto bad = st;
		// next_seq (8 bytes before the count of pending writes) = 0:
		// the write's seq 0 is not below it
		const size_t n_off = st.size() - 20 - 512 - 4;
		memset(&bad[n_off - 8], 0, 8);
		Status s = h.dev->Load(bad.data(), bad.size());
		CHECK(s.err() == EINVAL);
		CHECK(s.msg().find("bad pending write") != std::string::npos);
	}
	SECTION("malformed or another disk size is refused") {
		Rig h;
		CHECK(h.dev->Load(st.data(), st.size() - 1).err() == EINVAL);
		auto bad = st;
		bad[56 + 5] = 0xff;	// the used ring address (bytes 56..63): far past RAM
		CHECK(h.dev->Load(bad.data(), bad.size()).err() == EINVAL);
		auto other = st;
		other[0] ^= 1;	// capacity
		Status s = h.dev->Load(other.data(), other.size());
		CHECK(s.err() == EINVAL);
		CHECK(s.msg().find("sectors") != std::string::npos);
	}
}

// An SMP secondary with its own disk: every write is pending in the epoch
// that issued it and maybe in later ones (until the primary's ACK); each
// is written to the copy once, in order; a write in no epoch is a hole.
TEST_CASE("disk: an SMP private copy writes each epoch's new writes once, refuses a hole")
{
	Rig g;
	g.disk->set_mode(Disk::kEpochsPrivate);
	auto w = [](uint64_t seq, uint64_t sector, uint8_t byte) {
		Disk::Write x{};
		x.seq = seq;
		x.sector = sector;
		x.data.assign(512, byte);
		return x;
	};
	REQUIRE_OK(g.disk->ApplyEpoch({w(0, 1, 0xa0), w(1, 2, 0xa1)}, 2));
	CHECK(Slurp(g.path)[1 * 512] == 0xa0);
	CHECK(Slurp(g.path)[2 * 512] == 0xa1);
	// seq 1 still pending: skipped; sector 1 rewritten by seq 3
	REQUIRE_OK(g.disk->ApplyEpoch({w(1, 2, 0xee), w(2, 4, 0xa2), w(3, 1, 0xa3)}, 4));
	auto f = Slurp(g.path);
	CHECK(f[1 * 512] == 0xa3);
	CHECK(f[2 * 512] == 0xa1);
	CHECK(f[4 * 512] == 0xa2);
	CHECK(g.disk->replay_stats().copied == 4);
	CHECK(g.disk->overlay().empty());
	REQUIRE(g.disk->ApplyEpoch({}, 4).ok());	// an epoch without writes
	SECTION("writes 4 and 5 in no epoch: refused, nothing written") {
		Status s = g.disk->ApplyEpoch({w(6, 5, 0xa6)}, 7);
		CHECK(s.err() == EINVAL);
		CHECK(s.msg().find("disk writes 4 to 5 are in no epoch") != std::string::npos);
		CHECK(Slurp(g.path)[5 * 512] == 5);
		s = g.disk->ApplyEpoch({}, 6);
		CHECK(s.err() == EINVAL);
	}
	SECTION("a count going back: refused") {
		Status s = g.disk->ApplyEpoch({}, 3);
		CHECK(s.err() == EINVAL);
		CHECK(s.msg().find("an earlier one 4") != std::string::npos);
	}
	SECTION("shared storage (kEpochs) keeps them for go-live instead") {
		g.disk->set_mode(Disk::kEpochs);
		REQUIRE_OK(g.disk->ApplyEpoch({w(4, 6, 0xa4)}, 5));
		CHECK(g.disk->overlay().size() == 1);
		CHECK(Slurp(g.path)[6 * 512] == 6);
	}
}
