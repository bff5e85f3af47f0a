// record.h - one update of the protected data, as it travels from the
// active's unsafe queue to the passive's safe queue (and as the safe
// queue file stores it), plus the channel's control frames, which share
// the framing. Prose spec: Documentation/fthbd.md, "Queue records".
//
//   0        4        8                16     18     20       24       28
//   +--------+--------+----------------+------+------+--------+--------+----------+
//   | magic  | length | seq            | op   | flags| status | crc    | payload  |
//   +--------+--------+----------------+------+------+--------+--------+----------+
//   little-endian; length = payload bytes (<= kMaxPayload); crc = CRC-32C
//   of bytes 0..23 and the payload; flags bit 0: status is present.
//
//   payload: u32 path length, path, u32 path2 length, path2, u64 arg,
//            then data (the rest).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace kvmft::hbd {

constexpr uint32_t kMagic = 0x42485446; // "FTHB"
constexpr size_t kHeaderLen = 28;
constexpr uint32_t kMaxPayload = 4u << 20;
constexpr uint16_t kHasStatus = 1;

enum class Op : uint16_t {
	// Updates (safe queue).
	kWrite = 1,    // path, arg = offset, data
	kCreate = 2,   // path, arg = mode
	kTruncate = 3, // path, arg = size
	kRename = 4,   // path -> path2, arg = renameat2 flags
	kUnlink = 5,   // path
	kMkdir = 6,    // path, arg = mode
	kRmdir = 7,    // path
	kFsync = 8,    // path
	kChmod = 9,    // path, arg = mode
	kSymlink = 10, // path2 -> target path
	kLink = 11,    // path -> new name path2
	kUpdateLast = kLink,
	// Channel control frames (never stored).
	kHello = 100,     // passive -> active: arg = last seq stored
	kAck = 101,       // passive -> active: arg = seq stored and fsync'd
	kHeartbeat = 102, // both ways
	kSyncState = 103, // active -> passive: arg = 1 synchronised, 0 not
};

const char *OpName(Op op);

struct Record {
	uint64_t seq = 0;
	Op op = Op::kHeartbeat;
	bool has_status = false;
	int32_t status = 0; // result on the active: >= 0 done, -errno failed
	std::string path, path2;
	uint64_t arg = 0;
	std::string data;
};

// Appends the frame of r to *out.
void Encode(const Record &r, std::string *out);

enum class Decoded { kOk, kShort, kCorrupt };
// Decodes the frame at p (avail bytes). kOk: *r filled, *used = frame
// length. kShort: a frame starts here but is not complete (a truncated
// tail, or more bytes to come). kCorrupt: bad magic, length, CRC or
// payload layout; *why says which.
Decoded Decode(const uint8_t *p, size_t avail, Record *r, size_t *used, std::string *why);

} // namespace kvmft::hbd
