// bus.cc - address bus with overlap checking (see bus.h).
#include "hw/bus.h"

#include <fmt/format.h>

namespace kvmft::vmm {

Status Bus::Insert(BusDevice *dev, uint64_t base, uint64_t len)
{
	auto what = fmt::format("{} bus: {} at {:#x}+{:#x}", name_, dev->name(),
				base, len);
	if (len == 0)
		return Status::Error(EINVAL, what + ": zero-length range");
	if (base + len < base)
		return Status::Error(EINVAL, what + ": range overflows");
	uint64_t last = base + len - 1;
	auto next = ranges_.lower_bound(base);
	if (next != ranges_.end() && next->first <= last)
		return Status::Error(EEXIST, what + ": overlaps " +
					     next->second.dev->name());
	if (next != ranges_.begin()) {
		auto prev = std::prev(next);
		if (prev->first + prev->second.len - 1 >= base)
			return Status::Error(EEXIST, what + ": overlaps " +
						     prev->second.dev->name());
	}
	ranges_.emplace(base, Range{len, dev});
	return Status::Ok();
}

BusDevice *Bus::Find(uint64_t addr, uint32_t len, uint64_t *offset)
{
	auto it = ranges_.upper_bound(addr);
	if (it == ranges_.begin() || len == 0)
		return nullptr;
	--it;
	uint64_t off = addr - it->first;
	if (off >= it->second.len || len > it->second.len - off)
		return nullptr;
	*offset = off;
	return it->second.dev;
}

bool Bus::Read(uint64_t addr, uint8_t *data, uint32_t len)
{
	uint64_t off;
	BusDevice *dev = Find(addr, len, &off);
	if (!dev)
		return false;
	dev->Read(off, data, len);
	return true;
}

bool Bus::Write(uint64_t addr, const uint8_t *data, uint32_t len)
{
	uint64_t off;
	BusDevice *dev = Find(addr, len, &off);
	if (!dev)
		return false;
	dev->Write(off, data, len);
	return true;
}

} // namespace kvmft::vmm
