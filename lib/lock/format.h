// format.h - on-disk layout of a kvm-ft lock area (Documentation/lock.md).
//
// A lock area is a run of 512-byte sectors on shared storage, one per
// cluster. Every sector is written whole, carries a magic, and ends in a
// CRC32 (zlib) of its first 508 bytes. All integers are little-endian.
//
//   sector 0                     area header (geometry, timeouts, uuid)
//   sectors 1 .. H               host slots: slot i belongs to host id i
//   sectors 1+H .. 1+H+R*H-1     claim rows: row r, column h is host h's
//                                claim on a resource whose window holds r
//
// A sector is only ever written by the process that holds the host id
// owning it (host slot h, column h of every row); the header is written
// once by `ftctl lock init`. So no two hosts ever write the same sector,
// except two processes racing for the same free host id, which the
// host-id delta lease resolves (lockspace.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace kvmft::lock {

inline constexpr uint32_t kSectorSize = 512;
inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kMagicArea = 0x414552414b4c5446ULL;  // "FTLKAREA"
inline constexpr uint64_t kMagicHost = 0x54534f484b4c5446ULL;  // "FTLKHOST"
inline constexpr uint64_t kMagicClaim = 0x4d414c434b4c5446ULL; // "FTLKCLAM"
inline constexpr uint32_t kMaxHosts = 255;
inline constexpr uint32_t kMaxRows = 65536;
inline constexpr size_t kNameMax = 63; // resource and host names, bytes

// Timeouts every host of the area uses; stored in the header so that all
// hosts agree. Derived bounds are in timing.h.
struct Timeouts {
	uint32_t renew_ms = 500;       // heartbeat period
	uint32_t io_timeout_ms = 1000; // an I/O slower than this has failed
	uint32_t lease_ms = 3000;      // holder validity after a renewal starts
};

struct AreaHeader {
	uint32_t version = kVersion;
	uint32_t hosts = 16;      // host ids 1..hosts
	uint32_t rows = 256;      // claim rows (resources hash into them)
	Timeouts timeouts;
	uint8_t uuid[16] = {};    // random, identifies the area
	uint64_t created_ns = 0;  // CLOCK_REALTIME at init, display only
	std::string cluster;      // free text, <= kNameMax
};

enum class SlotState : uint32_t { kFree = 0, kLive = 1 };

// Host slot: the delta lease of one host id.
struct HostSlot {
	uint32_t host_id = 0;
	SlotState state = SlotState::kFree;
	uint64_t generation = 0; // incremented by each new owner of the id
	uint64_t nonce = 0;      // random per owning process
	uint64_t counter = 0;    // heartbeat: incremented by each renewal
	uint64_t wall_ns = 0;    // CLOCK_REALTIME of the write, display only
	std::string owner;       // "hostname:pid", display only
	bool operator==(const HostSlot &) const = default;
};

enum class ClaimState : uint32_t { kFree = 0, kOwned = 1 };

// Claim: host host_id (incarnation generation/nonce) claims resource.
struct Claim {
	uint32_t host_id = 0;
	ClaimState state = ClaimState::kFree;
	uint64_t generation = 0;
	uint64_t nonce = 0;
	uint64_t wall_ns = 0; // display only
	std::string resource;
	bool operator==(const Claim &) const = default;
};

// Geometry helpers.
inline uint64_t HostSector(uint32_t host_id) { return host_id; }
inline uint64_t ClaimSector(const AreaHeader &h, uint32_t row, uint32_t host_id)
{
	return 1 + uint64_t(h.hosts) + uint64_t(row) * h.hosts + (host_id - 1);
}
inline uint64_t AreaSectors(const AreaHeader &h)
{
	return 1 + uint64_t(h.hosts) + uint64_t(h.rows) * h.hosts;
}
// A resource may be claimed in any row of its window: WindowOf(h)
// consecutive rows from RowOf(resource) (FNV-1a of the name; stable
// across versions). Hosts read the whole window, so one host can hold up
// to kWindow resources whose windows overlap.
inline constexpr uint32_t kWindow = 4;
inline uint32_t WindowOf(const AreaHeader &h) { return h.rows < kWindow ? h.rows : kWindow; }
uint32_t RowOf(const AreaHeader &h, const std::string &resource);

Status CheckHeader(const AreaHeader &h);
Status CheckName(const std::string &what, const std::string &name);

// Encode into / decode from one kSectorSize sector. Decoders check the
// magic, CRC and field ranges; `where` names the sector in errors.
void EncodeHeader(const AreaHeader &h, uint8_t *sec);
Status DecodeHeader(const uint8_t *sec, AreaHeader *h);
void EncodeHost(const HostSlot &s, uint8_t *sec);
Status DecodeHost(const uint8_t *sec, uint32_t host_id, HostSlot *s);
void EncodeClaim(const Claim &c, uint8_t *sec);
Status DecodeClaim(const uint8_t *sec, uint32_t host_id, Claim *c);

std::string UuidString(const uint8_t uuid[16]);

} // namespace kvmft::lock
