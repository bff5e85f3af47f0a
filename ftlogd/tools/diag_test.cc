// Tests for DIAG records: what MakeDiag writes, CheckDiag accepts, and
// every single-byte corruption or wrong index is caught.
#include "diag.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include <catch2/catch.hpp>

using kvmft::logd::CheckDiag;
using kvmft::logd::DiagRec;
using kvmft::logd::MakeDiag;

TEST_CASE("a DIAG record made for an index checks out for that index only")
{
	std::vector<uint8_t> rec;
	MakeDiag(5, 64, &rec);
	REQUIRE(rec.size() == 64);
	DiagRec d;
	std::memcpy(&d, rec.data(), sizeof(d));
	CHECK(d.hdr.type == kvmft::logd::kRecDiag);
	CHECK(d.hdr.len == 64);
	CHECK(d.index == 5);
	CHECK(d.fill_len == 64 - sizeof(DiagRec));
	CHECK(CheckDiag(rec.data(), 64, 5).ok());

	kvmft::Status st = CheckDiag(rec.data(), 64, 6);
	CHECK(st.err() == EBADMSG);
	CHECK(st.msg() == "DIAG record 5, expected 6");
	CHECK(CheckDiag(rec.data(), sizeof(DiagRec) - 1, 5).msg() == "short DIAG record");
}

TEST_CASE("a DIAG record's fill depends on its index")
{
	std::vector<uint8_t> a, b;
	MakeDiag(1, 4096, &a);
	MakeDiag(2, 4096, &b);
	CHECK(!std::equal(a.begin() + sizeof(DiagRec), a.end(), b.begin() + sizeof(DiagRec)));
}

TEST_CASE("a DIAG record with any one byte flipped fails its check")
{
	std::vector<uint8_t> rec;
	MakeDiag(9, 128, &rec);
	// Covered: the header's type, then index, crc, fill_len and the
	// fill, not the header's other fields.
	size_t from = offsetof(DiagRec, index);
	for (size_t i = from; i < rec.size(); i++) {
		std::vector<uint8_t> bad = rec;
		bad[i] ^= 0x40;
		INFO("byte " << i);
		CHECK(CheckDiag(bad.data(), 128, 9).err() == EBADMSG);
	}
	std::vector<uint8_t> bad = rec;
	bad[offsetof(DiagRec, hdr.type)] ^= 1;
	CHECK(CheckDiag(bad.data(), 128, 9).msg().find("expected DIAG") != std::string::npos);
}
