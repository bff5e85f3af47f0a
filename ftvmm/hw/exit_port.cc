// exit_port.cc - the exit port (exit_port.h).
#include "hw/exit_port.h"

namespace kvmft::vmm {

void ExitPort::Read(uint64_t, uint8_t *d, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		d[i] = 0xff;
}

void ExitPort::Write(uint64_t, const uint8_t *d, uint32_t len)
{
	if (!len)
		return;
	done_ = true;
	status_ = ((d[0] & 0x7f) << 1) | 1;
}

} // namespace kvmft::vmm
