// record.cc - record headers (record.h).
#include "ftlog/record.h"

#include "base/clock.h"

namespace kvmft::vmm {

void InitRec(kvm_ft_rec_hdr *h, uint16_t type, uint32_t len, uint64_t pos)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->len = len;
	h->pos = pos;
	h->ts_ns = MonotonicNs();
}

} // namespace kvmft::vmm
