// bus.h - an address bus (port I/O or MMIO) mapping ranges to devices.
//
// As in Firecracker: a range is [base, base + len); Insert() rejects a
// zero-length range, a range whose end overflows 64 bits, and any overlap
// with a range already present. An access is dispatched to the device
// owning its first byte, with the offset from the range base; an access
// running past the end of that range, or hitting no range, is not handled.
//
// Thread safety: none; one bus per VM, used by the thread running exits.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/status.h"

namespace kvmft::vmm {

// A device on a bus. Read fills data[0..len); Write consumes it. offset is
// relative to the base of the range the device was inserted at.
class BusDevice {
public:
	virtual ~BusDevice() = default;
	virtual void Read(uint64_t offset, uint8_t *data, uint32_t len) = 0;
	virtual void Write(uint64_t offset, const uint8_t *data, uint32_t len) = 0;
	virtual const char *name() const = 0;
};

class Bus {
public:
	explicit Bus(std::string name) : name_(std::move(name)) {}
	// REQUIRES: dev outlives the bus.
	Status Insert(BusDevice *dev, uint64_t base, uint64_t len);
	// false if no device owns [addr, addr + len).
	bool Read(uint64_t addr, uint8_t *data, uint32_t len);
	bool Write(uint64_t addr, const uint8_t *data, uint32_t len);
	// Device owning addr, or nullptr.
	BusDevice *Find(uint64_t addr, uint32_t len, uint64_t *offset);

private:
	struct Range {
		uint64_t len;
		BusDevice *dev;
	};
	std::string name_;
	std::map<uint64_t, Range> ranges_; // by base
};

} // namespace kvmft::vmm
