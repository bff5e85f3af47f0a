// stateful.h - state that goes into snapshots and checkpoints: each device
// saves and loads its own as a fixed little-endian struct
// (Documentation/log-format.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/status.h"

namespace kvmft::vmm {

class Stateful {
public:
	virtual ~Stateful() = default;
	virtual uint32_t state_id() const = 0; // enum kvm_ft_vmm_dev_id
	virtual void Save(std::vector<uint8_t> *out) const = 0;
	virtual Status Load(const uint8_t *data, size_t len) = 0;
};

} // namespace kvmft::vmm
