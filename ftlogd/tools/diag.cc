// diag.cc - DIAG records (diag.h).
#include "diag.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "log/crc32c.h"

namespace kvmft::logd {

using kvmft::Status;

namespace {

// xorshift64 stream seeded by the index, 8 bytes per step.
void Fill(uint64_t i, uint8_t *p, size_t n)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;
	for (size_t k = 0; k < n; k += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		std::memcpy(p + k, &x, std::min<size_t>(8, n - k));
	}
}

} // namespace

void MakeDiag(uint64_t i, uint32_t len, std::vector<uint8_t> *rec)
{
	rec->assign(len, 0);
	DiagRec d{};
	d.hdr.type = kRecDiag;
	d.hdr.len = len;
	d.hdr.pos = i;
	d.index = i;
	d.fill_len = len - static_cast<uint32_t>(sizeof(d));
	Fill(i, rec->data() + sizeof(d), d.fill_len);
	d.crc = kvmft::Crc32c(0, rec->data() + sizeof(d), d.fill_len);
	std::memcpy(rec->data(), &d, sizeof(d));
}

Status CheckDiag(const uint8_t *rec, uint32_t len, uint64_t want)
{
	DiagRec d;
	if (len < sizeof(d))
		return Status::Error(EBADMSG, "short DIAG record");
	std::memcpy(&d, rec, sizeof(d));
	if (d.hdr.type != kRecDiag)
		return Status::Error(EBADMSG, "record type " + std::to_string(d.hdr.type) +
						      ", expected DIAG");
	if (d.index != want)
		return Status::Error(EBADMSG, "DIAG record " + std::to_string(d.index) +
						      ", expected " + std::to_string(want));
	if (d.fill_len != len - sizeof(d) ||
	    kvmft::Crc32c(0, rec + sizeof(d), d.fill_len) != d.crc)
		return Status::Error(EBADMSG, "DIAG record " + std::to_string(want) +
						      ": content checksum mismatch");
	return Status::Ok();
}

} // namespace kvmft::logd
