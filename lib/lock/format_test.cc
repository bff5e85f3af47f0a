// On-disk format: round trips, every corrupted byte detected, header
// checks, area init/inspect, and the O_DIRECT file disk.
#include "lock/area.h"
#include "lock/disk.h"
#include "lock/fake_disk.h"
#include "lock/format.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstring>
#include <vector>

using namespace kvmft;
using namespace kvmft::lock;

TEST_CASE("sectors round-trip", "[format]")
{
	uint8_t sec[kSectorSize];
	AreaHeader h;
	h.hosts = 7;
	h.rows = 99;
	h.timeouts = {200, 300, 1200};
	h.uuid[3] = 9;
	h.cluster = "prod-a";
	EncodeHeader(h, sec);
	AreaHeader h2;
	REQUIRE(DecodeHeader(sec, &h2).ok());
	CHECK(h2.hosts == 7);
	CHECK(h2.rows == 99);
	CHECK(h2.timeouts.lease_ms == 1200);
	CHECK(h2.uuid[3] == 9);
	CHECK(h2.cluster == "prod-a");

	HostSlot s{5, SlotState::kLive, 3, 0xabcdef, 77, 123, "node:1"};
	EncodeHost(s, sec);
	HostSlot s2;
	REQUIRE(DecodeHost(sec, 5, &s2).ok());
	CHECK(s2 == s);
	CHECK(DecodeHost(sec, 6, &s2).err() == EBADMSG); // wrong slot

	Claim c{5, ClaimState::kOwned, 3, 0xabcdef, 1, "vm-42"};
	EncodeClaim(c, sec);
	Claim c2;
	REQUIRE(DecodeClaim(sec, 5, &c2).ok());
	CHECK(c2 == c);
}

TEST_CASE("every single corrupted byte is detected", "[format]")
{
	uint8_t sec[kSectorSize];
	EncodeClaim({2, ClaimState::kOwned, 1, 1, 1, "vm"}, sec);
	for (size_t i = 0; i < kSectorSize; i++) {
		uint8_t bad[kSectorSize];
		std::memcpy(bad, sec, sizeof(bad));
		bad[i] ^= 0x40;
		Claim c;
		INFO("byte " << i);
		CHECK(DecodeClaim(bad, 2, &c).err() == EBADMSG);
	}
	uint8_t hs[kSectorSize];
	EncodeHost({1, SlotState::kLive, 1, 1, 1, 1, "x"}, hs);
	hs[100] ^= 1;
	HostSlot s;
	CHECK(DecodeHost(hs, 1, &s).err() == EBADMSG);
}

TEST_CASE("header and name checks", "[format]")
{
	AreaHeader h;
	CHECK(CheckHeader(h).ok());
	h.timeouts.lease_ms = 2 * (h.timeouts.renew_ms + h.timeouts.io_timeout_ms) - 1;
	CHECK(CheckHeader(h).err() == EINVAL);
	h = AreaHeader{};
	h.hosts = 0;
	CHECK(CheckHeader(h).err() == EINVAL);
	h = AreaHeader{};
	h.version = 2;
	CHECK(CheckHeader(h).err() == EPROTO);
	CHECK(CheckName("resource", "vm-1").ok());
	CHECK(CheckName("resource", "").err() == EINVAL);
	CHECK(CheckName("resource", "has space").err() == EINVAL);
	CHECK(CheckName("resource", std::string(kNameMax + 1, 'a')).err() == EINVAL);
}

TEST_CASE("init writes a free area, refuses to overwrite one", "[format]")
{
	AreaHeader h;
	h.hosts = 4;
	h.rows = 8;
	MemDisk small(AreaSectors(h) - 1);
	CHECK(FormatArea(&small, &h, false).err() == ENOSPC);

	MemDisk d(AreaSectors(h));
	REQUIRE(FormatArea(&d, &h, false).ok());
	AreaView v;
	REQUIRE(InspectArea(&d, &v).ok());
	CHECK(v.hosts.size() == 4);
	CHECK(v.claims.empty());
	CHECK(v.errors.empty());
	for (const HostView &hv : v.hosts)
		CHECK((hv.error.empty() && hv.slot.state == SlotState::kFree));
	std::string uuid = UuidString(v.hdr.uuid);

	AreaHeader again = h;
	Status st = FormatArea(&d, &again, false);
	CHECK(st.err() == EEXIST);
	CHECK(st.msg().find(uuid) != std::string::npos);
	REQUIRE(FormatArea(&d, &again, true).ok());
	CHECK(UuidString(again.uuid) != uuid);

	// A corrupt claim is reported, not skipped silently.
	d.sector(ClaimSector(h, 3, 2))[40] ^= 1;
	AreaView v2;
	REQUIRE(InspectArea(&d, &v2).ok());
	REQUIRE(v2.errors.size() == 1);
	CHECK(v2.errors[0].find("row 3") != std::string::npos);
}

TEST_CASE("FileDisk does O_DIRECT sector I/O on a file", "[format]")
{
	char path[] = "/tmp/kvmft-lock-test-XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	close(fd);
	std::unique_ptr<FileDisk> d;
	Status st = FileDisk::Open(path, 16, &d);
	INFO(st.msg()); // the lock needs O_DIRECT: a filesystem without it fails here
	REQUIRE(st.ok());
	CHECK(d->Sectors() == 16);
	std::vector<uint8_t> w(3 * kSectorSize + 1), r(3 * kSectorSize + 1);
	for (size_t i = 0; i < w.size(); i++)
		w[i] = uint8_t(i * 7);
	// Deliberately unaligned caller buffers.
	REQUIRE(d->Write(5, 3, w.data() + 1).ok());
	REQUIRE(d->Read(5, 3, r.data() + 1).ok());
	CHECK(std::memcmp(w.data() + 1, r.data() + 1, 3 * kSectorSize) == 0);
	CHECK(d->Read(15, 2, r.data()).err() == ERANGE);
	unlink(path);
}
