// Unit tests for CRC32C and the FT log wire frame codec: every corrupt
// byte, every truncation, reordering and replay must be caught.
#include "log/crc32c.h"
#include "log/frame.h"

#include <linux/kvm_ft.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

using namespace kvmft;

namespace {

std::vector<uint8_t> Records(uint32_t stream, uint64_t first_seq, int n)
{
	std::vector<uint8_t> out;
	for (int i = 0; i < n; i++) {
		kvm_ft_rec_pio r{};
		r.hdr.type = KVM_FT_REC_PIO;
		r.hdr.len = sizeof(r);
		r.hdr.vcpu = stream;
		r.hdr.seq = first_seq + static_cast<uint64_t>(i);
		r.port = 0x3f8;
		r.value = 100 + static_cast<uint64_t>(i);
		const auto *b = reinterpret_cast<const uint8_t *>(&r);
		out.insert(out.end(), b, b + sizeof(r));
	}
	return out;
}

std::vector<uint8_t> DataFrame(uint64_t seq, int nrec = 3)
{
	std::vector<uint8_t> out;
	auto recs = Records(0, (seq - 1) * static_cast<uint64_t>(nrec), nrec);
	AppendFrame(&out, kFrameData, 0, seq, recs.data(), recs.size());
	return out;
}

// Decodes everything; returns the frame headers decoded and the final
// result.
FrameDecoder::Result DecodeAll(const std::vector<uint8_t> &bytes, std::vector<FrameHdr> *got,
			       Status *err)
{
	FrameDecoder d;
	d.Feed(bytes.data(), bytes.size());
	Frame f;
	FrameDecoder::Result r;
	while ((r = d.Next(&f, err)) == FrameDecoder::kFrame)
		got->push_back(f.hdr);
	return r;
}

} // namespace

TEST_CASE("CRC32C matches the RFC 3720 test vectors")
{
	std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32), dec(32);
	for (int i = 0; i < 32; i++) {
		inc[i] = static_cast<uint8_t>(i);
		dec[i] = static_cast<uint8_t>(31 - i);
	}
	for (auto fn : {Crc32c, Crc32cSoft}) {
		CHECK(fn(0, zeros.data(), 32) == 0x8a9136aa);
		CHECK(fn(0, ones.data(), 32) == 0x62a8ab43);
		CHECK(fn(0, inc.data(), 32) == 0x46dd794e);
		CHECK(fn(0, dec.data(), 32) == 0x113fdb5c);
		CHECK(fn(0, "123456789", 9) == 0xe3069283);
	}
	// Incremental == one shot, any split, odd lengths included.
	std::string s(1000, 'x');
	for (size_t i = 0; i < s.size(); i++)
		s[i] = static_cast<char>(i * 7 + 3);
	uint32_t whole = Crc32c(0, s.data(), s.size());
	CHECK(Crc32cSoft(0, s.data(), s.size()) == whole);
	for (size_t cut : {1u, 7u, 8u, 13u, 999u})
		CHECK(Crc32c(Crc32c(0, s.data(), cut), s.data() + cut, s.size() - cut) == whole);
}

TEST_CASE("CRC32C: the interleaved hardware loops agree with the table version")
{
	// Lengths around the three-stream block sizes (3 x 256, 3 x 8192),
	// at every alignment, and split points inside the blocks.
	std::vector<uint8_t> buf(3 * 8192 * 2 + 64);
	uint32_t x = 12345;
	for (auto &b : buf) {
		x = x * 1103515245 + 12345;
		b = static_cast<uint8_t>(x >> 16);
	}
	for (size_t len : {767u, 768u, 769u, 4096u, 4100u, 24575u, 24576u, 24577u, 49152u,
			   49159u}) {
		for (size_t off = 0; off < 8; off++) {
			INFO("len " << len << " off " << off);
			const uint8_t *p = buf.data() + off;
			uint32_t soft = Crc32cSoft(0, p, len);
			CHECK(Crc32c(0, p, len) == soft);
			size_t cut = len / 3 + off;
			CHECK(Crc32c(Crc32c(0, p, cut), p + cut, len - cut) == soft);
		}
	}
}

TEST_CASE("frames round-trip, also when fed one byte at a time")
{
	std::vector<uint8_t> bytes;
	for (uint64_t s = 1; s <= 5; s++) {
		auto f = DataFrame(s);
		bytes.insert(bytes.end(), f.begin(), f.end());
	}
	AckPayload ack{42, 0};
	AppendFrame(&bytes, kFrameAck, 0, 5, &ack, sizeof(ack));
	// Where each frame starts, to check what the decoder says it misses.
	std::vector<size_t> starts;
	for (size_t off = 0; off < bytes.size();) {
		starts.push_back(off);
		FrameHdr h;
		std::memcpy(&h, bytes.data() + off, sizeof(h));
		off += kFrameHdrLen + h.len;
	}
	starts.push_back(bytes.size()); // after the last: a header is missing
	starts.push_back(bytes.size());
	FrameDecoder d;
	std::vector<FrameHdr> hdrs;
	uint64_t rec_seq = kRecSeqUnset;
	uint64_t consumed = 0;
	size_t fed = 0;
	for (uint8_t b : bytes) {
		d.Feed(&b, 1);
		fed++;
		Frame f;
		Status err;
		FrameDecoder::Result r;
		while ((r = d.Next(&f, &err)) == FrameDecoder::kFrame) {
			hdrs.push_back(f.hdr);
			if (f.hdr.type == kFrameData) {
				int n = 0;
				REQUIRE(WalkRecords(f.payload, f.hdr.len, 0, &rec_seq,
						    [&](const uint8_t *, uint32_t) { n++; })
						.ok());
				CHECK(n == 3);
			} else {
				std::memcpy(&consumed, f.payload, 8);
			}
		}
		REQUIRE(r == FrameDecoder::kNeedMore);
		size_t start = starts[hdrs.size()], end = starts[hdrs.size() + 1];
		CHECK(d.missing() == (fed - start < kFrameHdrLen ? start + kFrameHdrLen - fed
								  : end - fed));
	}
	REQUIRE(hdrs.size() == 6);
	for (uint64_t i = 0; i < 5; i++) {
		CHECK(hdrs[i].type == kFrameData);
		CHECK(hdrs[i].seq == i + 1);
	}
	CHECK(hdrs[5].type == kFrameAck);
	CHECK(consumed == 42);
	CHECK(rec_seq == 15);
	CHECK(d.buffered() == 0);
}

TEST_CASE("every single corrupted byte is detected")
{
	auto good = DataFrame(1);
	for (size_t i = 0; i < good.size(); i++) {
		for (uint8_t flip : {0x01, 0x80, 0xff}) {
			auto bad = good;
			bad[i] ^= flip;
			std::vector<FrameHdr> got;
			Status err;
			FrameDecoder::Result r = DecodeAll(bad, &got, &err);
			// A corrupted length may make the decoder wait for more
			// bytes only if the header CRC still matched: it cannot.
			INFO("byte " << i << " flip " << int(flip));
			CHECK(got.empty());
			CHECK(r == FrameDecoder::kError);
			CHECK(!err.ok());
		}
	}
}

TEST_CASE("truncated streams never yield a partial frame")
{
	auto good = DataFrame(1);
	for (size_t n = 0; n < good.size(); n++) {
		std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
		std::vector<FrameHdr> got;
		Status err;
		CHECK(DecodeAll(cut, &got, &err) == FrameDecoder::kNeedMore);
		CHECK(got.empty());
	}
	// A frame whose payload is cut and followed by the next frame's bytes
	// fails on the payload CRC.
	auto second = DataFrame(2);
	std::vector<uint8_t> spliced(good.begin(), good.end() - 8);
	spliced.insert(spliced.end(), second.begin(), second.end());
	std::vector<FrameHdr> got;
	Status err;
	CHECK(DecodeAll(spliced, &got, &err) == FrameDecoder::kError);
	CHECK(err.err() == EBADMSG);
}

TEST_CASE("header checks name what is wrong")
{
	std::vector<uint8_t> f;
	AppendFrame(&f, kFramePing, 0, 1, nullptr, 0);
	FrameHdr h;
	std::memcpy(&h, f.data(), sizeof(h));
	REQUIRE(CheckFrameHdr(h).ok());
	auto resign = [](FrameHdr x) {
		x.hdr_crc = Crc32c(0, &x, offsetof(FrameHdr, hdr_crc));
		return x;
	};
	FrameHdr v = h;
	v.version = 2;
	CHECK(CheckFrameHdr(resign(v)).err() == EPROTONOSUPPORT);
	v = h;
	v.type = 99;
	CHECK(CheckFrameHdr(resign(v)).msg() == "unknown frame type 99");
	v = h;
	v.len = kFrameMaxPayload + 1;
	CHECK(CheckFrameHdr(resign(v)).err() == EMSGSIZE);
	v = h;
	v.flags = 1;
	CHECK(!CheckFrameHdr(resign(v)).ok());
	v = h;
	v.magic = 0;
	CHECK(CheckFrameHdr(resign(v)).msg() == "bad frame magic");
}

TEST_CASE("a failed decoder stays failed")
{
	auto bad = DataFrame(1);
	bad[40] ^= 1;
	FrameDecoder d;
	d.Feed(bad.data(), bad.size());
	Frame f;
	Status err;
	REQUIRE(d.Next(&f, &err) == FrameDecoder::kError);
	auto good = DataFrame(2);
	d.Feed(good.data(), good.size());
	CHECK(d.Next(&f, &err) == FrameDecoder::kError);
}

TEST_CASE("reordered and replayed DATA frames are refused")
{
	SeqCheck s;
	REQUIRE(s.Accept(1).ok());
	REQUIRE(s.Accept(2).ok());
	Status replay = s.Accept(2);
	CHECK(replay.msg().find("replayed") != std::string::npos);
	CHECK(s.Accept(1).msg().find("replayed") != std::string::npos);
	Status gap = s.Accept(4);
	CHECK(gap.msg().find("out of order") != std::string::npos);
	CHECK(s.last() == 2);
	CHECK(s.Accept(3).ok());
	SeqCheck resumed(10);
	CHECK(!resumed.Accept(10).ok());
	CHECK(resumed.Accept(11).ok());
}

TEST_CASE("records inside a DATA payload are checked")
{
	auto recs = Records(1, 5, 3);
	uint64_t next = 5;
	int n = 0;
	auto count = [&](const uint8_t *, uint32_t) { n++; };
	REQUIRE(WalkRecords(recs.data(), recs.size(), 1, &next, count).ok());
	CHECK(n == 3);
	CHECK(next == 8);
	// Wrong stream.
	next = 5;
	CHECK(!WalkRecords(recs.data(), recs.size(), 0, &next, count).ok());
	// A missing record breaks the ring's sequence.
	next = 5;
	std::vector<uint8_t> holed(recs.begin(), recs.begin() + sizeof(kvm_ft_rec_pio));
	holed.insert(holed.end(), recs.begin() + 2 * sizeof(kvm_ft_rec_pio), recs.end());
	Status st = WalkRecords(holed.data(), holed.size(), 1, &next, count);
	CHECK(st.msg() == "record seq 7 on ring 1, expected 6");
	// Truncated tail, bad length, PAD on the wire.
	next = kRecSeqUnset;
	CHECK(!WalkRecords(recs.data(), recs.size() - 8, 1, &next, count).ok());
	auto badlen = recs;
	badlen[4] = 12;
	next = kRecSeqUnset;
	CHECK(!WalkRecords(badlen.data(), badlen.size(), 1, &next, count).ok());
	auto pad = recs;
	pad[0] = KVM_FT_REC_PAD;
	next = kRecSeqUnset;
	CHECK(!WalkRecords(pad.data(), pad.size(), 1, &next, count).ok());
	// A LOST record accounts for the records it stands for.
	kvm_ft_rec_lost l{};
	l.hdr.type = KVM_FT_REC_LOST;
	l.hdr.len = sizeof(l);
	l.hdr.vcpu = 1;
	l.hdr.seq = 8;
	l.count = 4;
	next = 8;
	REQUIRE(WalkRecords(reinterpret_cast<uint8_t *>(&l), sizeof(l), 1, &next, count).ok());
	CHECK(next == 12);
}
