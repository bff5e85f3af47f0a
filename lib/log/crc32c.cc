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

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cHw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = ~crc;
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
