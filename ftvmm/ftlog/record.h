// record.h - building FT log records (uapi/linux/kvm_ft_vmm.h,
// Documentation/log-format.md): the common header, and records that
// carry a payload after their fixed part, padded to 8 bytes.
#pragma once

#include <linux/kvm_ft.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace kvmft::vmm {

// Fills the common header of a record about to be appended (seq is the
// sink's; ts_ns is now).
void InitRec(kvm_ft_rec_hdr *h, uint16_t type, uint32_t len, uint64_t pos);

// A record whose fixed part is T (starting with its kvm_ft_rec_hdr hdr)
// followed by n bytes of payload: *buf holds it, padded to 8, with the
// header filled, T's other fields zero and the payload copied. Returns
// the fixed part, for the caller's fields; buf->size() is its length.
template <typename T>
T *NewPayloadRec(std::vector<uint8_t> *buf, uint16_t type, uint64_t pos, const void *payload,
		 size_t n)
{
	buf->assign((sizeof(T) + n + 7) & ~size_t{7}, 0);
	auto *r = reinterpret_cast<T *>(buf->data());
	InitRec(&r->hdr, type, static_cast<uint32_t>(buf->size()), pos);
	if (n)
		memcpy(buf->data() + sizeof(T), payload, n);
	return r;
}

} // namespace kvmft::vmm
