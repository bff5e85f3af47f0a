// ring_io.cc - ring reader (primary, read-ahead, release on ACK) and ring
// writer (secondary, exact copy, never drops). Barrier pairing as in
// lib/ring/ring.cc and Documentation/ring.md.
#include "log/ring_io.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>

namespace kvmft {

namespace {

template <typename T> T LoadAcquire(const T *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
template <typename T> void StoreRelease(T *p, std::type_identity_t<T> v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

std::string N(uint64_t v) { return std::to_string(v); }

} // namespace

uint64_t RingFree(const RingView &v)
{
	// Acquire: pairs with the consumer's release store of consumer_pos.
	uint64_t used = v.prod->producer_pos - LoadAcquire(&v.ctl->consumer_pos);
	return used > v.size ? 0 : v.size - used;
}

bool RingFits(const RingView &v, uint32_t len)
{
	uint64_t off = v.prod->producer_pos & (v.size - 1);
	uint64_t pad = len > v.size - off ? v.size - off : 0;
	return pad + len <= RingFree(v);
}

RingReader::RingReader(const RingView &v) : v_(v)
{
	acked_ = sent_ = v.ctl->consumer_pos;
	__atomic_store_n(&v_.ctl->read_pos, sent_, __ATOMIC_RELAXED);
}

uint64_t RingReader::produced() const
{
	// Acquire: pairs with the producer's release store of producer_pos.
	return LoadAcquire(&v_.prod->producer_pos);
}

bool RingReader::HasUnsent() const { return produced() != sent_; }

Status RingReader::Read(size_t max_bytes, std::vector<uint8_t> *out, uint64_t *end,
			uint64_t *last_ts, size_t *nrec)
{
	*nrec = 0;
	uint64_t prod = produced();
	const uint64_t size = v_.size;
	if (prod - acked_ > size || prod < sent_)
		return Status::Error(EPROTO, "ring " + N(v_.prod->vcpu) +
						     ": producer position " + N(prod) + " out of range");
	size_t taken = 0;
	uint64_t cur = sent_;
	while (cur != prod) {
		uint64_t off = cur & (size - 1);
		uint64_t contig = std::min(prod - cur, size - off);
		kvm_ft_rec_hdr h;
		if (contig < 8)
			return Status::Error(EPROTO, "ring: truncated record at " + N(cur));
		std::memcpy(&h, v_.data + off, std::min<uint64_t>(contig, sizeof(h)));
		if (h.len < 8 || h.len % 8 || h.len > contig)
			return Status::Error(EPROTO, "ring: bad record length " + N(h.len) +
							     " at position " + N(cur));
		if (h.type == KVM_FT_REC_PAD) {
			cur += h.len;
			continue;
		}
		if (h.len < sizeof(h) || h.type > KVM_FT_REC_TYPE_MAX || h.type == 0)
			return Status::Error(EPROTO, "ring: bad record type " + N(h.type) +
							     " at position " + N(cur));
		if (*nrec && taken + h.len > max_bytes)
			break;
		size_t at = out->size();
		out->resize(at + h.len);
		// Copy, then re-check the copy: the producer's memory is not ours.
		std::memcpy(out->data() + at, v_.data + off, h.len);
		kvm_ft_rec_hdr c;
		std::memcpy(&c, out->data() + at, sizeof(c));
		if (c.len != h.len || c.type != h.type)
			return Status::Error(EPROTO, "ring: record changed while read at " + N(cur));
		*last_ts = c.ts_ns;
		taken += h.len;
		cur += h.len;
		(*nrec)++;
	}
	sent_ = cur;
	*end = cur;
	// Tell the producer how far we read (uapi: read_pos), so that it
	// wakes us for the next record although consumer_pos waits for the
	// ACK. Ordered before our WAKEUP store and full barrier (ArmWakeup).
	__atomic_store_n(&v_.ctl->read_pos, cur, __ATOMIC_RELAXED);
	return Status::Ok();
}

void RingReader::Ack(uint64_t pos)
{
	if (pos <= acked_)
		return;
	acked_ = pos;
	// Release: pairs with the VMM's acquire load of ack_pos (outputs
	// tagged at or below pos may leave) and of consumer_pos (space).
	StoreRelease(&v_.ctl->ack_pos, pos);
	StoreRelease(&v_.ctl->consumer_pos, pos);
}

bool RingWriter::Fits(const std::vector<uint32_t> &lens) const
{
	uint64_t pos = init_ ? pos_ : v_.prod->producer_pos;
	for (uint32_t len : lens) {
		uint64_t off = pos & (v_.size - 1);
		if (len > v_.size - off)
			pos += v_.size - off;
		pos += len;
	}
	// Acquire: pairs with the consumer's release store of consumer_pos.
	return pos - LoadAcquire(&v_.ctl->consumer_pos) <= v_.size;
}

void RingWriter::Put(const uint8_t *rec, uint32_t len)
{
	if (!init_) {
		pos_ = v_.prod->producer_pos;
		init_ = true;
	}
	uint64_t off = pos_ & (v_.size - 1);
	if (len > v_.size - off) {
		kvm_ft_rec_hdr pad{};
		pad.type = KVM_FT_REC_PAD;
		pad.len = static_cast<uint32_t>(v_.size - off);
		std::memcpy(v_.data + off, &pad, std::min<uint64_t>(pad.len, sizeof(pad)));
		pos_ += pad.len;
		off = 0;
	}
	std::memcpy(v_.data + off, rec, len);
	pos_ += len;
	v_.prod->records++;
}

uint64_t RingWriter::Publish()
{
	uint64_t pos = PublishQuiet();
	Wake();
	return pos;
}

uint64_t RingWriter::PublishQuiet()
{
	if (!init_ || pos_ == v_.prod->producer_pos)
		return init_ ? pos_ : v_.prod->producer_pos;
	// Release: pairs with the consumer's acquire load of producer_pos.
	StoreRelease(&v_.prod->producer_pos, pos_);
	wake_ = true;
	return pos_;
}

void RingWriter::Wake()
{
	if (!wake_)
		return;
	wake_ = false;
	// Full barrier between the store of producer_pos (PublishQuiet) and
	// the load of the flags: pairs with the consumer's barrier after it
	// sets KVM_FT_CTL_WAKEUP (RingSet::Wait).
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if ((__atomic_load_n(&v_.ctl->flags, __ATOMIC_RELAXED) & KVM_FT_CTL_WAKEUP) && efd_ >= 0) {
		uint64_t one = 1;
		ssize_t r = write(efd_, &one, sizeof(one));
		(void)r;
	}
}

uint64_t RingWriter::consumed() const { return LoadAcquire(&v_.ctl->consumer_pos); }

} // namespace kvmft
