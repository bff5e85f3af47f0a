// loader.h - loads a guest image into RAM: a static ELF64 (each PT_LOAD
// with a non-zero size at its p_paddr, zero-filled from p_filesz to
// p_memsz) or a flat binary at kFlatBase. Every bound is checked; a bad
// image is an error naming the offending header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace kvmft::vmm {

constexpr uint64_t kFlatBase = 0x100000;

struct Image {
	std::vector<uint8_t> bytes;
	uint64_t hash = 0; // FNV-1a 64 of the file
};

Status ReadImage(const std::string &path, Image *out);
// mem: guest RAM of mem_bytes. Sets *entry.
Status LoadElf(const Image &img, uint8_t *mem, uint64_t mem_bytes, uint64_t *entry);
Status LoadFlat(const Image &img, uint8_t *mem, uint64_t mem_bytes, uint64_t *entry);

class Vm;
// Reads path, loads it (ELF, or flat) into vm and sets the entry state.
Status BootImage(Vm &vm, const std::string &path, bool flat, uint64_t *image_hash);

} // namespace kvmft::vmm
