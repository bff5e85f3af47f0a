// crc32c.cc - CRC-32C, hardware (SSE4.2) and slicing-by-8 table versions.
#include "log/crc32c.h"

#include <array>
#include <cstring>

namespace kvmft {

namespace {

constexpr uint32_t kPoly = 0x82f63b78; // 0x1EDC6F41 bit-reversed

using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables()
{
	Tables t{};
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
		t[0][i] = c;
	}
	for (int s = 1; s < 8; s++)
		for (uint32_t i = 0; i < 256; i++)
			t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
	return t;
}

constexpr Tables kTables = MakeTables();

// Appending zero bytes to a CRC (without the pre/post inversion) is a
// linear map of its 32 bits: ZerosOp(len) is that map as a GF(2) matrix
// (column n = image of bit n), for len a power of two; ZerosTable turns it
// into four byte-indexed tables so Shift() costs four lookups. This is how
// the three interleaved CRCs below are joined (after zlib's crc32_combine).
using Matrix = std::array<uint32_t, 32>;

constexpr uint32_t Times(const Matrix &m, uint32_t v)
{
	uint32_t sum = 0;
	for (int i = 0; v; v >>= 1, i++)
		if (v & 1)
			sum ^= m[i];
	return sum;
}

constexpr Matrix Square(const Matrix &m)
{
	Matrix sq{};
	for (int n = 0; n < 32; n++)
		sq[n] = Times(m, m[n]);
	return sq;
}

constexpr Matrix ZerosOp(size_t len)
{
	Matrix op{};	// one zero bit
	op[0] = kPoly;
	for (int n = 1; n < 32; n++)
		op[n] = 1U << (n - 1);
	for (int i = 0; i < 3; i++)	// eight zero bits: one zero byte
		op = Square(op);
	for (; len > 1; len >>= 1)
		op = Square(op);
	return op;
}

using ZerosTable = std::array<std::array<uint32_t, 256>, 4>;

constexpr ZerosTable MakeZeros(size_t len)
{
	Matrix op = ZerosOp(len);
	ZerosTable t{};
	for (uint32_t n = 0; n < 256; n++)
		for (int b = 0; b < 4; b++)
			t[b][n] = Times(op, n << (8 * b));
	return t;
}

// Block lengths of the interleaved loops: three streams of kLong bytes
// for large buffers, of kShort bytes for the 4 KiB records of the log.
constexpr size_t kLong = 8192, kShort = 256;
constexpr ZerosTable kZerosLong = MakeZeros(kLong);
constexpr ZerosTable kZerosShort = MakeZeros(kShort);

constexpr uint32_t Shift(const ZerosTable &z, uint32_t crc)
{
	return z[0][crc & 0xff] ^ z[1][(crc >> 8) & 0xff] ^
	       z[2][(crc >> 16) & 0xff] ^ z[3][crc >> 24];
}

#if defined(__x86_64__)
// The crc32 instruction has a latency of three cycles and a throughput of
// one: a single chain runs at a third of the unit's speed. Three
// independent chains over adjacent blocks, joined with Shift(), use all
// of it.
__attribute__((target("sse4.2"))) uint64_t Crc32cHw3(uint64_t c0, const uint8_t *&p, size_t &n,
						      size_t block, const ZerosTable &z)
{
	while (n >= 3 * block) {
		uint64_t c1 = 0, c2 = 0;
		for (const uint8_t *end = p + block; p < end; p += 8) {
			uint64_t v0, v1, v2;
			std::memcpy(&v0, p, 8);
			std::memcpy(&v1, p + block, 8);
			std::memcpy(&v2, p + 2 * block, 8);
			c0 = __builtin_ia32_crc32di(c0, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		c0 = Shift(z, static_cast<uint32_t>(c0)) ^ c1;
		c0 = Shift(z, static_cast<uint32_t>(c0)) ^ c2;
		p += 2 * block;
		n -= 3 * block;
	}
	return c0;
}

__attribute__((target("sse4.2"))) uint32_t Crc32cHw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = ~crc;
	c = Crc32cHw3(c, p, n, kLong, kZerosLong);
	c = Crc32cHw3(c, p, n, kShort, kZerosShort);
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;
		std::memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	uint32_t c32 = static_cast<uint32_t>(c);
	for (; n; n--, p++)
		c32 = __builtin_ia32_crc32qi(c32, *p);
	return ~c32;
}

bool HaveHw()
{
	static const bool hw = __builtin_cpu_supports("sse4.2");
	return hw;
}
#endif

} // namespace

uint32_t Crc32cSoft(uint32_t crc, const void *buf, size_t n)
{
	const auto *p = static_cast<const uint8_t *>(buf);
	uint32_t c = ~crc;
	for (; n >= 8; n -= 8, p += 8) {
		uint32_t lo, hi;
		std::memcpy(&lo, p, 4); // little endian host (x86-64)
		std::memcpy(&hi, p + 4, 4);
		lo ^= c;
		c = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^
		    kTables[5][(lo >> 16) & 0xff] ^ kTables[4][lo >> 24] ^
		    kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
		    kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
	}
	for (; n; n--, p++)
		c = (c >> 8) ^ kTables[0][(c ^ *p) & 0xff];
	return ~c;
}

uint32_t Crc32c(uint32_t crc, const void *p, size_t n)
{
#if defined(__x86_64__)
	if (HaveHw())
		return Crc32cHw(crc, static_cast<const uint8_t *>(p), n);
#endif
	return Crc32cSoft(crc, p, n);
}

} // namespace kvmft
