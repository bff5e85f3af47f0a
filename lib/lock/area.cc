// area.cc - format and inspect a lock area.
#include "lock/area.h"

#include <sys/random.h>
#include <time.h>

namespace kvmft::lock {

namespace {

// Claim rows are written in chunks of this many sectors.
constexpr uint32_t kChunk = 256;

Status WriteFree(Disk *disk, const AreaHeader &h)
{
	std::vector<uint8_t> buf(size_t(kChunk) * kSectorSize);
	for (uint32_t id = 1; id <= h.hosts; id++)
		EncodeHost({id}, &buf[(id - 1) % kChunk * kSectorSize]);
	// h.hosts <= 255 < kChunk: one write.
	Status st = disk->Write(HostSector(1), h.hosts, buf.data());
	if (!st.ok())
		return st;
	uint64_t first = ClaimSector(h, 0, 1), n = uint64_t(h.rows) * h.hosts;
	for (uint64_t i = 0; i < n; i += kChunk) {
		uint32_t cnt = static_cast<uint32_t>(std::min<uint64_t>(kChunk, n - i));
		for (uint32_t j = 0; j < cnt; j++) {
			uint32_t host = static_cast<uint32_t>((i + j) % h.hosts) + 1;
			EncodeClaim({host}, &buf[j * kSectorSize]);
		}
		st = disk->Write(first + i, cnt, buf.data());
		if (!st.ok())
			return st;
	}
	return Status::Ok();
}

} // namespace

Status FormatArea(Disk *disk, AreaHeader *hdr, bool force)
{
	Status st = CheckHeader(*hdr);
	if (!st.ok())
		return st;
	if (st = CheckName("cluster", hdr->cluster); !hdr->cluster.empty() && !st.ok())
		return st;
	if (disk->Sectors() < AreaSectors(*hdr))
		return Status::Error(ENOSPC, disk->Name() + ": " +
						     std::to_string(disk->Sectors()) +
						     " sectors, the area needs " +
						     std::to_string(AreaSectors(*hdr)));
	std::vector<uint8_t> sec(kSectorSize);
	if (!force && disk->Sectors() > 0 && disk->Read(0, 1, sec.data()).ok()) {
		AreaHeader old;
		if (DecodeHeader(sec.data(), &old).ok())
			return Status::Error(EEXIST, disk->Name() +
							     " already holds lock area " +
							     UuidString(old.uuid) +
							     " (--force to overwrite it)");
	}
	if (getrandom(hdr->uuid, sizeof(hdr->uuid), 0) != sizeof(hdr->uuid))
		return Status::Errno("getrandom");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	hdr->created_ns = uint64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
	// Invalidate the old header first: a half-written area must not look valid.
	std::vector<uint8_t> zero(kSectorSize, 0);
	st = disk->Write(0, 1, zero.data());
	if (st.ok())
		st = WriteFree(disk, *hdr);
	if (!st.ok())
		return st.Wrap("init " + disk->Name());
	EncodeHeader(*hdr, sec.data());
	return disk->Write(0, 1, sec.data()).Wrap("init " + disk->Name());
}

Status InspectArea(Disk *disk, AreaView *v)
{
	std::vector<uint8_t> buf(kSectorSize);
	Status st = disk->Read(0, 1, buf.data());
	if (st.ok())
		st = DecodeHeader(buf.data(), &v->hdr);
	if (!st.ok())
		return st.Wrap(disk->Name());
	const AreaHeader &h = v->hdr;
	if (disk->Sectors() < AreaSectors(h))
		return Status::Error(EINVAL, disk->Name() + ": smaller than its lock area");
	buf.resize(size_t(h.hosts) * kSectorSize);
	if (st = disk->Read(HostSector(1), h.hosts, buf.data()); !st.ok())
		return st;
	v->hosts.assign(h.hosts, HostView{});
	for (uint32_t id = 1; id <= h.hosts; id++) {
		Status d = DecodeHost(&buf[(id - 1) * kSectorSize], id, &v->hosts[id - 1].slot);
		v->hosts[id - 1].error = d.ok() ? "" : d.msg();
	}
	uint64_t n = uint64_t(h.rows) * h.hosts;
	buf.resize(n * kSectorSize);
	if (st = disk->Read(ClaimSector(h, 0, 1), static_cast<uint32_t>(n), buf.data()); !st.ok())
		return st;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t row = static_cast<uint32_t>(i / h.hosts);
		uint32_t host = static_cast<uint32_t>(i % h.hosts) + 1;
		Claim c;
		Status d = DecodeClaim(&buf[i * kSectorSize], host, &c);
		if (!d.ok()) {
			v->errors.push_back("row " + std::to_string(row) + ": " + d.msg());
			continue;
		}
		if (c.state != ClaimState::kOwned)
			continue;
		const HostView &hv = v->hosts[host - 1];
		bool cur = hv.error.empty() && hv.slot.state == SlotState::kLive &&
			   hv.slot.generation == c.generation && hv.slot.nonce == c.nonce;
		v->claims.push_back({row, c, cur});
	}
	return Status::Ok();
}

} // namespace kvmft::lock
