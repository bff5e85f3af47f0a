// rtc.h - the CMOS RTC (Documentation/ftvmm.md, "Devices"). Time enters
// only through its wall clock.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>

#include "hw/bus.h"
#include "hw/stateful.h"

namespace kvmft::vmm {

// CMOS RTC at 0x70 (index; bit 7 = NMI mask, ignored) and 0x71 (data).
// Time registers read the host wall clock in UTC; writes to them are
// ignored. Status B selects BCD/binary and 12/24 hours. Other bytes are
// 128 bytes of CMOS RAM.
class Rtc : public BusDevice, public Stateful {
public:
	using WallClock = std::function<time_t()>;
	explicit Rtc(WallClock clock);
	void Read(uint64_t off, uint8_t *d, uint32_t len) override;
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "rtc"; }
	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	uint8_t ReadReg(uint8_t reg) const;
	WallClock clock_;
	uint8_t index_ = 0;
	uint8_t ram_[128] = {};
};

} // namespace kvmft::vmm
