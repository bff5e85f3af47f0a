// libFuzzer target: the FT log frame decoder and the DATA payload walker
// on arbitrary bytes, fed in arbitrary pieces. Must never crash, read
// out of bounds, or return a frame whose CRCs do not match.
#include <cstring>

#include "log/crc32c.h"
#include "log/frame.h"

using namespace kvmft;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FrameDecoder d;
	size_t off = 0;
	// The first byte chooses the piece size, to exercise partial input.
	size_t piece = size ? (data[0] % 64) + 1 : 1;
	for (;;) {
		size_t n = std::min(piece, size - off);
		d.Feed(data + off, n);
		off += n;
		Frame f;
		Status err;
		FrameDecoder::Result r;
		while ((r = d.Next(&f, &err)) == FrameDecoder::kFrame) {
			if (Crc32c(0, f.payload, f.hdr.len) != f.hdr.pay_crc)
				__builtin_trap();
			uint64_t next = kRecSeqUnset;
			WalkRecords(f.payload, f.hdr.len, f.hdr.stream, &next,
				    [](const uint8_t *, uint32_t) {});
		}
		if (r == FrameDecoder::kError || off == size)
			break;
	}
	// The payload walker alone, on the raw input.
	uint64_t next = kRecSeqUnset;
	WalkRecords(data, size, 0, &next, [](const uint8_t *, uint32_t) {});
	return 0;
}
