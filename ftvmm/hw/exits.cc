// exits.cc - port I/O and MMIO exits against a bus (exits.h).
#include "hw/exits.h"

#include <cstring>

namespace kvmft::vmm {

bool DoPortIo(kvm_run *run, Bus *bus)
{
	uint8_t *data = IoData(run);
	uint32_t size = run->io.size;
	bool handled = true;
	for (uint32_t i = 0; i < run->io.count; i++) {
		uint8_t *p = data + i * size;
		if (run->io.direction == KVM_EXIT_IO_IN) {
			if (!bus->Read(run->io.port, p, size)) {
				memset(p, 0xff, size);
				handled = false;
			}
		} else if (!bus->Write(run->io.port, p, size)) {
			handled = false;
		}
	}
	return handled;
}

bool DoMmio(kvm_run *run, Bus *bus)
{
	uint32_t len = run->mmio.len;
	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	if (run->mmio.is_write)
		return bus->Write(run->mmio.phys_addr, run->mmio.data, len);
	if (!bus->Read(run->mmio.phys_addr, run->mmio.data, len)) {
		memset(run->mmio.data, 0xff, len);
		return false;
	}
	return true;
}

} // namespace kvmft::vmm
