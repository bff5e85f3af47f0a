// record.cc - queue record framing (record.h).
#include "record.h"

#include <cstring>

#include "log/crc32c.h"

namespace kvmft::hbd {

namespace {

template <typename T> void Put(std::string *o, T v)
{
	char b[sizeof(T)];
	std::memcpy(b, &v, sizeof(T)); // x86-64 and arm64: little-endian
	o->append(b, sizeof(T));
}

template <typename T> T Get(const uint8_t *p)
{
	T v;
	std::memcpy(&v, p, sizeof(T));
	return v;
}

} // namespace

const char *OpName(Op op)
{
	switch (op) {
	case Op::kWrite: return "write";
	case Op::kCreate: return "create";
	case Op::kTruncate: return "truncate";
	case Op::kRename: return "rename";
	case Op::kUnlink: return "unlink";
	case Op::kMkdir: return "mkdir";
	case Op::kRmdir: return "rmdir";
	case Op::kFsync: return "fsync";
	case Op::kChmod: return "chmod";
	case Op::kSymlink: return "symlink";
	case Op::kLink: return "link";
	case Op::kHello: return "hello";
	case Op::kAck: return "ack";
	case Op::kHeartbeat: return "heartbeat";
	case Op::kSyncState: return "sync-state";
	}
	return "unknown";
}

void Encode(const Record &r, std::string *out)
{
	size_t start = out->size();
	std::string pl;
	Put<uint32_t>(&pl, static_cast<uint32_t>(r.path.size()));
	pl += r.path;
	Put<uint32_t>(&pl, static_cast<uint32_t>(r.path2.size()));
	pl += r.path2;
	Put<uint64_t>(&pl, r.arg);
	pl += r.data;
	Put<uint32_t>(out, kMagic);
	Put<uint32_t>(out, static_cast<uint32_t>(pl.size()));
	Put<uint64_t>(out, r.seq);
	Put<uint16_t>(out, static_cast<uint16_t>(r.op));
	Put<uint16_t>(out, r.has_status ? kHasStatus : 0);
	Put<int32_t>(out, r.status);
	uint32_t crc = kvmft::Crc32c(0, out->data() + start, 24);
	crc = kvmft::Crc32c(crc, pl.data(), pl.size());
	Put<uint32_t>(out, crc);
	*out += pl;
}

Decoded Decode(const uint8_t *p, size_t avail, Record *r, size_t *used, std::string *why)
{
	if (avail >= 4 && Get<uint32_t>(p) != kMagic) {
		*why = "bad magic";
		return Decoded::kCorrupt;
	}
	if (avail < kHeaderLen)
		return Decoded::kShort;
	uint32_t len = Get<uint32_t>(p + 4);
	if (len > kMaxPayload) {
		*why = "payload length " + std::to_string(len) + " over the limit";
		return Decoded::kCorrupt;
	}
	if (avail < kHeaderLen + len)
		return Decoded::kShort;
	uint32_t crc = kvmft::Crc32c(0, p, 24);
	crc = kvmft::Crc32c(crc, p + kHeaderLen, len);
	if (crc != Get<uint32_t>(p + 24)) {
		*why = "CRC mismatch";
		return Decoded::kCorrupt;
	}
	uint16_t flags = Get<uint16_t>(p + 18);
	const uint8_t *q = p + kHeaderLen, *end = q + len;
	auto str = [&](std::string *s) {
		if (end - q < 4)
			return false;
		uint32_t n = Get<uint32_t>(q);
		q += 4;
		if (static_cast<size_t>(end - q) < n)
			return false;
		s->assign(reinterpret_cast<const char *>(q), n);
		q += n;
		return true;
	};
	if (flags & ~kHasStatus || !str(&r->path) || !str(&r->path2) || end - q < 8) {
		*why = "bad payload layout";
		return Decoded::kCorrupt;
	}
	r->seq = Get<uint64_t>(p + 8);
	r->op = static_cast<Op>(Get<uint16_t>(p + 16));
	r->has_status = flags & kHasStatus;
	r->status = Get<int32_t>(p + 20);
	r->arg = Get<uint64_t>(q);
	q += 8;
	r->data.assign(reinterpret_cast<const char *>(q), end - q);
	*used = kHeaderLen + len;
	return Decoded::kOk;
}

} // namespace kvmft::hbd
