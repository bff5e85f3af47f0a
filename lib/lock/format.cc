// format.cc - encode and decode the sectors of a lock area (format.h).
#include "lock/format.h"

#include <zlib.h>

#include <cstddef>
#include <cstdio>
#include <cstring>

namespace kvmft::lock {

namespace {

// The raw sector images. Fixed-width fields, explicit padding; the CRC is
// always the last 4 bytes of the sector.
struct RawHeader {
	uint64_t magic;         // kMagicArea
	uint32_t version;       // kVersion
	uint32_t sector_size;   // kSectorSize
	uint32_t hosts;         // number of host slots
	uint32_t rows;          // number of claim rows
	uint32_t renew_ms;      // Timeouts
	uint32_t io_timeout_ms;
	uint32_t lease_ms;
	uint32_t reserved0;     // zero
	uint8_t uuid[16];       // area identity
	uint64_t created_ns;    // CLOCK_REALTIME, display only
	char cluster[64];       // NUL-terminated
	uint8_t pad[kSectorSize - 132];
	uint32_t crc;           // crc32 of bytes 0..507
};

struct RawHost {
	uint64_t magic;      // kMagicHost
	uint32_t host_id;    // equals the slot index
	uint32_t state;      // SlotState
	uint64_t generation;
	uint64_t nonce;
	uint64_t counter;
	uint64_t wall_ns;
	char owner[64];      // NUL-terminated
	uint8_t pad[kSectorSize - 116];
	uint32_t crc;
};

struct RawClaim {
	uint64_t magic;      // kMagicClaim
	uint32_t host_id;    // equals the column
	uint32_t state;      // ClaimState
	uint64_t generation;
	uint64_t nonce;
	uint64_t wall_ns;
	char resource[64];   // NUL-terminated
	uint8_t pad[kSectorSize - 108];
	uint32_t crc;
};

static_assert(sizeof(RawHeader) == kSectorSize);
static_assert(sizeof(RawHost) == kSectorSize);
static_assert(sizeof(RawClaim) == kSectorSize);
static_assert(offsetof(RawHeader, crc) == kSectorSize - 4);

uint32_t Crc(const void *p)
{
	return static_cast<uint32_t>(
		crc32(0L, static_cast<const Bytef *>(p), kSectorSize - 4));
}

void PutName(char (&dst)[64], const std::string &s)
{
	std::memset(dst, 0, sizeof(dst));
	std::memcpy(dst, s.data(), std::min(s.size(), kNameMax));
}

std::string GetName(const char (&src)[64])
{
	return std::string(src, strnlen(src, kNameMax));
}

// Copy a sector into a raw image and check magic and CRC.
template <typename Raw>
Status Load(const uint8_t *sec, uint64_t magic, const char *what, Raw *r)
{
	std::memcpy(r, sec, sizeof(*r));
	if (r->magic != magic)
		return Status::Error(EBADMSG, std::string(what) + ": bad magic");
	if (r->crc != Crc(r))
		return Status::Error(EBADMSG, std::string(what) + ": bad checksum");
	return Status::Ok();
}

} // namespace

uint32_t RowOf(const AreaHeader &h, const std::string &resource)
{
	uint32_t x = 2166136261u;
	for (unsigned char c : resource)
		x = (x ^ c) * 16777619u;
	return x % (h.rows - WindowOf(h) + 1);
}

Status CheckName(const std::string &what, const std::string &name)
{
	if (name.empty() || name.size() > kNameMax)
		return Status::Error(EINVAL, what + " \"" + name + "\" must be 1.." +
						     std::to_string(kNameMax) + " bytes");
	for (unsigned char c : name)
		if (c < 0x21 || c > 0x7e)
			return Status::Error(EINVAL, what + " \"" + name +
							     "\" has a blank or non-ASCII byte");
	return Status::Ok();
}

Status CheckHeader(const AreaHeader &h)
{
	const Timeouts &t = h.timeouts;
	if (h.version != kVersion)
		return Status::Error(EPROTO, "area version " + std::to_string(h.version) +
						     " not supported (want " +
						     std::to_string(kVersion) + ")");
	if (h.hosts < 1 || h.hosts > kMaxHosts)
		return Status::Error(EINVAL, "hosts must be 1.." + std::to_string(kMaxHosts));
	if (h.rows < 1 || h.rows > kMaxRows)
		return Status::Error(EINVAL, "resources must be 1.." + std::to_string(kMaxRows));
	if (t.renew_ms < 10 || t.io_timeout_ms < 10 || t.io_timeout_ms > 600000)
		return Status::Error(EINVAL, "renew and io timeouts must be 10..600000 ms");
	// A holder must get at least two renewals, each up to an I/O timeout,
	// into one lease, or a single slow I/O would cost it the lock.
	if (t.lease_ms < 2 * (t.renew_ms + t.io_timeout_ms) || t.lease_ms > 3600000)
		return Status::Error(EINVAL, "lease must be >= 2 * (renew + io timeout) and <= 1 h");
	return Status::Ok();
}

void EncodeHeader(const AreaHeader &h, uint8_t *sec)
{
	RawHeader r{};
	r.magic = kMagicArea;
	r.version = h.version;
	r.sector_size = kSectorSize;
	r.hosts = h.hosts;
	r.rows = h.rows;
	r.renew_ms = h.timeouts.renew_ms;
	r.io_timeout_ms = h.timeouts.io_timeout_ms;
	r.lease_ms = h.timeouts.lease_ms;
	std::memcpy(r.uuid, h.uuid, sizeof(r.uuid));
	r.created_ns = h.created_ns;
	PutName(r.cluster, h.cluster);
	r.crc = Crc(&r);
	std::memcpy(sec, &r, sizeof(r));
}

Status DecodeHeader(const uint8_t *sec, AreaHeader *h)
{
	RawHeader r;
	Status st = Load(sec, kMagicArea, "area header", &r);
	if (!st.ok())
		return st.Wrap("not a kvm-ft lock area (run \"ftctl lock init\")");
	if (r.sector_size != kSectorSize)
		return Status::Error(EBADMSG, "area header: sector size " +
						      std::to_string(r.sector_size));
	h->version = r.version;
	h->hosts = r.hosts;
	h->rows = r.rows;
	h->timeouts = {r.renew_ms, r.io_timeout_ms, r.lease_ms};
	std::memcpy(h->uuid, r.uuid, sizeof(r.uuid));
	h->created_ns = r.created_ns;
	h->cluster = GetName(r.cluster);
	return CheckHeader(*h).Wrap("area header");
}

void EncodeHost(const HostSlot &s, uint8_t *sec)
{
	RawHost r{};
	r.magic = kMagicHost;
	r.host_id = s.host_id;
	r.state = static_cast<uint32_t>(s.state);
	r.generation = s.generation;
	r.nonce = s.nonce;
	r.counter = s.counter;
	r.wall_ns = s.wall_ns;
	PutName(r.owner, s.owner);
	r.crc = Crc(&r);
	std::memcpy(sec, &r, sizeof(r));
}

Status DecodeHost(const uint8_t *sec, uint32_t host_id, HostSlot *s)
{
	std::string what = "host slot " + std::to_string(host_id);
	RawHost r;
	Status st = Load(sec, kMagicHost, what.c_str(), &r);
	if (!st.ok())
		return st;
	if (r.host_id != host_id || r.state > 1)
		return Status::Error(EBADMSG, what + ": inconsistent fields");
	*s = {r.host_id, static_cast<SlotState>(r.state), r.generation, r.nonce,
	      r.counter, r.wall_ns, GetName(r.owner)};
	return Status::Ok();
}

void EncodeClaim(const Claim &c, uint8_t *sec)
{
	RawClaim r{};
	r.magic = kMagicClaim;
	r.host_id = c.host_id;
	r.state = static_cast<uint32_t>(c.state);
	r.generation = c.generation;
	r.nonce = c.nonce;
	r.wall_ns = c.wall_ns;
	PutName(r.resource, c.resource);
	r.crc = Crc(&r);
	std::memcpy(sec, &r, sizeof(r));
}

Status DecodeClaim(const uint8_t *sec, uint32_t host_id, Claim *c)
{
	std::string what = "claim of host " + std::to_string(host_id);
	RawClaim r;
	Status st = Load(sec, kMagicClaim, what.c_str(), &r);
	if (!st.ok())
		return st;
	if (r.host_id != host_id || r.state > 1)
		return Status::Error(EBADMSG, what + ": inconsistent fields");
	*c = {r.host_id, static_cast<ClaimState>(r.state), r.generation, r.nonce,
	      r.wall_ns, GetName(r.resource)};
	return Status::Ok();
}

std::string UuidString(const uint8_t uuid[16])
{
	char buf[40];
	std::snprintf(buf, sizeof(buf),
		      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		      uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6],
		      uuid[7], uuid[8], uuid[9], uuid[10], uuid[11], uuid[12],
		      uuid[13], uuid[14], uuid[15]);
	return buf;
}

} // namespace kvmft::lock
