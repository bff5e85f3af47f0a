// pit.h - the 8254 PIT (Documentation/ftvmm.md, "Devices"). Time enters
// only through its clock, so a recorder logs every value it produces and a
// replayer never consults it for what the guest sees.
#pragma once

#include <cstdint>
#include <functional>

#include "hw/bus.h"
#include "hw/stateful.h"

namespace kvmft::vmm {

// 8254 PIT at 0x40..0x43, 1.193182 MHz, counting on a monotonic clock.
// Channel 0 drives IRQ0 in modes 0 (one shot), 2 and 3 (periodic).
// BCD counting and the read-back command are not supported.
class Pit : public BusDevice, public Stateful {
public:
	static constexpr uint64_t kHz = 1193182;
	using Clock = std::function<uint64_t()>; // ns
	explicit Pit(Clock clock) : clock_(std::move(clock)) {}
	void Read(uint64_t off, uint8_t *d, uint32_t len) override;
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "pit"; }
	// Next time channel 0 raises IRQ0 (ns), UINT64_MAX if never.
	uint64_t NextIrq() const;
	// true once per elapsed IRQ0 deadline (missed periods coalesce).
	bool PollIrq(uint64_t now);
	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

	struct Channel {
		uint8_t mode = 0, access = 3;
		uint8_t write_lsb = 0, read_lsb = 0; // next byte is MSB
		uint8_t latched = 0, armed = 0;
		uint16_t latch = 0, lsb = 0;
		uint32_t reload = 65536;
		uint64_t start = 0;	// clock ns when counting began
		uint64_t fired = 0;	// IRQ deadlines consumed (channel 0)
	};

private:
	uint16_t Count(const Channel &c, uint64_t now) const;
	uint64_t Deadline(const Channel &c, uint64_t k) const;
	Clock clock_;
	Channel ch_[3];
};

} // namespace kvmft::vmm
