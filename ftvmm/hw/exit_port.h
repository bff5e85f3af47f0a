// exit_port.h - the exit port, with which a test guest ends the VM.
#pragma once

#include <cstdint>

#include "hw/bus.h"

namespace kvmft::vmm {

// Exit port 0x501: a byte v written ends the VM with status (v << 1) | 1
// (v < 0x80; higher bits are dropped). Reads return 0xff.
class ExitPort : public BusDevice {
public:
	void Read(uint64_t, uint8_t *d, uint32_t len) override;
	void Write(uint64_t, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "exit"; }
	bool done() const { return done_; }
	int status() const { return status_; }

private:
	bool done_ = false;
	int status_ = 0;
};

} // namespace kvmft::vmm
