// frame.cc - FT log wire frames: encode, decode, verify.
// Spec: Documentation/wire-protocol.md.
#include "log/frame.h"

#include <linux/kvm_ft.h>

#include <cstring>

#include "log/crc32c.h"

namespace kvmft {

namespace {

constexpr size_t kHdrCrcSpan = offsetof(FrameHdr, hdr_crc);

std::string N(uint64_t v) { return std::to_string(v); }

} // namespace

const char *FrameTypeName(uint8_t type)
{
	switch (type) {
	case kFrameHello: return "HELLO";
	case kFrameWelcome: return "WELCOME";
	case kFrameData: return "DATA";
	case kFrameAck: return "ACK";
	case kFramePing: return "PING";
	case kFramePong: return "PONG";
	case kFrameBye: return "BYE";
	}
	return "unknown";
}

size_t BeginFrame(std::vector<uint8_t> *out)
{
	size_t start = out->size();
	out->resize(start + kFrameHdrLen);
	return start;
}

void FinishFrame(std::vector<uint8_t> *out, size_t start, uint8_t type, uint32_t stream,
		 uint64_t seq)
{
	FrameHdr h{};
	h.magic = kFrameMagic;
	h.version = kFrameVersion;
	h.type = type;
	h.len = static_cast<uint32_t>(out->size() - start - kFrameHdrLen);
	h.stream = stream;
	h.seq = seq;
	h.pay_crc = Crc32c(0, out->data() + start + kFrameHdrLen, h.len);
	h.hdr_crc = Crc32c(0, &h, kHdrCrcSpan);
	std::memcpy(out->data() + start, &h, sizeof(h));
}

void AppendFrame(std::vector<uint8_t> *out, uint8_t type, uint32_t stream, uint64_t seq,
		 const void *payload, size_t len)
{
	size_t start = BeginFrame(out);
	const auto *p = static_cast<const uint8_t *>(payload);
	out->insert(out->end(), p, p + len);
	FinishFrame(out, start, type, stream, seq);
}

Status CheckFrameHdr(const FrameHdr &h)
{
	if (h.magic != kFrameMagic)
		return Status::Error(EPROTO, "bad frame magic");
	if (Crc32c(0, &h, kHdrCrcSpan) != h.hdr_crc)
		return Status::Error(EBADMSG, "frame header CRC mismatch");
	if (h.version != kFrameVersion)
		return Status::Error(EPROTONOSUPPORT, "frame version " + N(h.version) +
							      " not supported");
	if (h.type == 0 || h.type > kFrameTypeLast)
		return Status::Error(EPROTO, "unknown frame type " + N(h.type));
	if (h.flags)
		return Status::Error(EPROTO, "frame flags must be zero");
	if (h.len > kFrameMaxPayload)
		return Status::Error(EMSGSIZE, "frame payload of " + N(h.len) + " bytes too long");
	return Status::Ok();
}

uint8_t *FrameDecoder::Reserve(size_t n)
{
	// Drop consumed bytes first: all of them when nothing is left, else
	// once they are the larger part (a partial frame is moved rarely).
	if (off_ && off_ == buf_.size()) {
		buf_.clear();
		off_ = 0;
	} else if (off_ > (1u << 16) && off_ * 2 > buf_.size()) {
		buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(off_));
		off_ = 0;
	}
	used_ = buf_.size();
	buf_.resize(used_ + n);
	return data() + used_;
}

void FrameDecoder::Commit(size_t m)
{
	buf_.resize(used_ + m);
}

void FrameDecoder::Feed(const void *p, size_t n)
{
	uint8_t *to = Reserve(n);
	if (n)
		std::memcpy(to, p, n);
	Commit(n);
}

FrameDecoder::Result FrameDecoder::Next(Frame *f, Status *err)
{
	if (failed_) {
		*err = Status::Error(EPROTO, "frame stream already failed");
		return kError;
	}
	missing_ = 0;
	if (buffered() < kFrameHdrLen) {
		missing_ = kFrameHdrLen - buffered();
		return kNeedMore;
	}
	FrameHdr h;
	std::memcpy(&h, data() + off_, sizeof(h));
	Status st = CheckFrameHdr(h);
	if (!st.ok()) {
		failed_ = true;
		*err = st.Wrap("at stream offset " + N(off_));
		return kError;
	}
	if (buffered() < kFrameHdrLen + h.len) {
		missing_ = kFrameHdrLen + h.len - buffered();
		return kNeedMore;
	}
	const uint8_t *pay = data() + off_ + kFrameHdrLen;
	if (Crc32c(0, pay, h.len) != h.pay_crc) {
		failed_ = true;
		*err = Status::Error(EBADMSG, std::string(FrameTypeName(h.type)) + " frame seq " +
						      N(h.seq) + ": payload CRC mismatch");
		return kError;
	}
	off_ += kFrameHdrLen + h.len;
	f->hdr = h;
	f->payload = pay;
	return kFrame;
}

Status SeqCheck::Accept(uint64_t seq)
{
	if (seq <= last_)
		return Status::Error(EPROTO, "replayed DATA frame seq " + N(seq) +
						     " (last stored " + N(last_) + ")");
	if (seq != last_ + 1)
		return Status::Error(EPROTO, "DATA frame seq " + N(seq) + " out of order (expected " +
						     N(last_ + 1) + ")");
	last_ = seq;
	return Status::Ok();
}

Status WalkRecords(const uint8_t *p, size_t len, uint32_t stream, uint64_t *next_rec_seq,
		   const RecordFn &fn)
{
	size_t off = 0;
	while (off < len) {
		kvm_ft_rec_hdr h;
		if (len - off < sizeof(h))
			return Status::Error(EPROTO, "truncated record at payload offset " + N(off));
		std::memcpy(&h, p + off, sizeof(h));
		if (h.len < sizeof(h) || h.len % 8 || h.len > len - off)
			return Status::Error(EPROTO, "bad record length " + N(h.len) +
							     " at payload offset " + N(off));
		if (h.type == 0 || h.type == KVM_FT_REC_PAD || h.type > KVM_FT_REC_TYPE_MAX)
			return Status::Error(EPROTO, "bad record type " + N(h.type) +
							     " at payload offset " + N(off));
		if (h.vcpu != stream)
			return Status::Error(EPROTO, "record of vCPU " + N(h.vcpu) + " in stream " +
							     N(stream));
		if (*next_rec_seq != kRecSeqUnset && h.seq != *next_rec_seq)
			return Status::Error(EPROTO, "record seq " + N(h.seq) + " on ring " + N(stream) +
							     ", expected " + N(*next_rec_seq));
		uint64_t span = 1;
		if (h.type == KVM_FT_REC_LOST) {
			if (h.len < sizeof(kvm_ft_rec_lost))
				return Status::Error(EPROTO, "short LOST record");
			std::memcpy(&span, p + off + offsetof(kvm_ft_rec_lost, count), 8);
		}
		*next_rec_seq = h.seq + span;
		fn(p + off, h.len);
		off += h.len;
	}
	return Status::Ok();
}

} // namespace kvmft
