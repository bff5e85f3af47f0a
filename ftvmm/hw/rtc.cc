// rtc.cc - CMOS real-time clock (rtc.h).
#include <linux/kvm_ft_vmm.h>

#include "hw/rtc.h"
#include "hw/state_io.h"

namespace kvmft::vmm {

namespace {
enum : uint8_t {
	kRegA = 0x0a, kRegB = 0x0b, kRegC = 0x0c, kRegD = 0x0d,
	kRegCentury = 0x32,
	kB24h = 0x02, kBBinary = 0x04,
	kDValid = 0x80,
};

uint8_t Bcd(unsigned v) { return static_cast<uint8_t>((v / 10) << 4 | (v % 10)); }
} // namespace

Rtc::Rtc(WallClock clock) : clock_(std::move(clock))
{
	ram_[kRegA] = 0x26; // 32.768 kHz time base, 1024 Hz rate
	ram_[kRegB] = kB24h;
}

uint8_t Rtc::ReadReg(uint8_t reg) const
{
	time_t t = clock_();
	struct tm tm;
	gmtime_r(&t, &tm);
	bool binary = ram_[kRegB] & kBBinary;
	unsigned v;
	switch (reg) {
	case 0x00: v = tm.tm_sec; break;
	case 0x02: v = tm.tm_min; break;
	case 0x04: {
		if (ram_[kRegB] & kB24h) {
			v = tm.tm_hour;
			break;
		}
		unsigned h = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
		uint8_t pm = tm.tm_hour >= 12 ? 0x80 : 0;
		return (binary ? h : Bcd(h)) | pm;
	}
	case 0x06: v = tm.tm_wday + 1; break;
	case 0x07: v = tm.tm_mday; break;
	case 0x08: v = tm.tm_mon + 1; break;
	case 0x09: v = tm.tm_year % 100; break;
	case kRegCentury: v = (tm.tm_year + 1900) / 100; break;
	case kRegA: return ram_[kRegA] & 0x7f; // UIP never set
	case kRegC: return 0;
	case kRegD: return kDValid;
	default: return ram_[reg];
	}
	return binary ? v : Bcd(v);
}

void Rtc::Read(uint64_t off, uint8_t *d, uint32_t len)
{
	uint8_t v = off == 1 ? ReadReg(index_) : 0xff;
	for (uint32_t i = 0; i < len; i++)
		d[i] = i ? 0xff : v;
}

void Rtc::Write(uint64_t off, const uint8_t *d, uint32_t len)
{
	if (!len)
		return;
	if (off == 0) {
		index_ = d[0] & 0x7f;
		return;
	}
	switch (index_) {
	case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08:
	case 0x09: case kRegC: case kRegD: case kRegCentury:
		return; // time and status C/D: read-only here
	case kRegA:
		ram_[kRegA] = d[0] & 0x7f;
		return;
	default:
		ram_[index_] = d[0];
	}
}

uint32_t Rtc::state_id() const { return KVM_FT_DEV_RTC; }

void Rtc::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	w.Put(index_);
	w.PutBytes(ram_, sizeof(ram_));
}

Status Rtc::Load(const uint8_t *data, size_t len)
{
	StateReader r(data, len);
	uint8_t index = r.Get<uint8_t>();
	uint8_t ram[128];
	r.GetBytes(ram, sizeof(ram));
	if (!r.done() || index > 0x7f)
		return Status::Error(EINVAL, "rtc state: wrong size or index");
	index_ = index;
	memcpy(ram_, ram, sizeof(ram));
	return Status::Ok();
}

} // namespace kvmft::vmm
