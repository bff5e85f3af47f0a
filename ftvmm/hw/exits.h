// exits.h - carrying out one I/O exit against a bus, as plain functions
// of a struct kvm_run so they can be tested with made-up exits.
//
// Port I/O: run->io.count elements of run->io.size bytes at
// run + run->io.data_offset. Ports no device owns read as all ones and
// ignore writes (as on a PC). MMIO: run->mmio; unowned addresses likewise.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "hw/bus.h"

namespace kvmft::vmm {

// Bytes of I/O data of a KVM_EXIT_IO exit.
inline uint32_t IoBytes(const kvm_run *run)
{
	return static_cast<uint32_t>(run->io.size) * run->io.count;
}
inline uint8_t *IoData(kvm_run *run)
{
	return reinterpret_cast<uint8_t *>(run) + run->io.data_offset;
}

// Returns false if no device owned the access (it was still completed).
bool DoPortIo(kvm_run *run, Bus *bus);
bool DoMmio(kvm_run *run, Bus *bus);

} // namespace kvmft::vmm
