// crc32c.h - CRC-32C (Castagnoli, iSCSI polynomial 0x1EDC6F41, reflected),
// as used by the FT log wire frames (Documentation/wire-protocol.md).
// Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8
// table otherwise; both give identical results (tested with RFC 3720
// vectors).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvmft {

// CRC of len bytes at p, continuing from crc (0 to start).
uint32_t Crc32c(uint32_t crc, const void *p, size_t len);
// The portable table implementation, exposed for tests and benchmarks.
uint32_t Crc32cSoft(uint32_t crc, const void *p, size_t len);

} // namespace kvmft
