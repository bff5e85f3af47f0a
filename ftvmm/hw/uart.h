// uart.h - the 16550 UART (Documentation/ftvmm.md, "Devices").
#pragma once

#include <cstdint>
#include <functional>

#include "hw/bus.h"
#include "hw/stateful.h"

namespace kvmft::vmm {

// 16550 UART at 0x3f8: transmit only. LSR always reads THR empty and
// transmitter empty; no interrupts are raised; no receive data.
class Uart : public BusDevice, public Stateful {
public:
	using Sink = std::function<void(uint8_t)>;
	explicit Uart(Sink sink) : sink_(std::move(sink)) {}
	void Read(uint64_t off, uint8_t *d, uint32_t len) override;
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "uart"; }
	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	Sink sink_;
	uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0, scr_ = 0, dll_ = 1, dlm_ = 0;
};

} // namespace kvmft::vmm
