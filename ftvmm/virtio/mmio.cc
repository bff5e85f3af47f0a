// virtio_mmio.cc - virtio-mmio v2 transport and split virtqueues
// (virtio_mmio.h).
#include "virtio/mmio.h"

#include <algorithm>
#include <cstring>

namespace kvmft::vmm {

namespace {
enum : uint64_t {
	kRegMagic = 0x000,
	kRegVersion = 0x004,
	kRegDeviceId = 0x008,
	kRegVendorId = 0x00c,
	kRegDeviceFeatures = 0x010,
	kRegDeviceFeaturesSel = 0x014,
	kRegDriverFeatures = 0x020,
	kRegDriverFeaturesSel = 0x024,
	kRegQueueSel = 0x030,
	kRegQueueNumMax = 0x034,
	kRegQueueNum = 0x038,
	kRegQueueReady = 0x044,
	kRegQueueNotify = 0x050,
	kRegInterruptStatus = 0x060,
	kRegInterruptAck = 0x064,
	kRegStatus = 0x070,
	kRegQueueDescLow = 0x080,
	kRegQueueDescHigh = 0x084,
	kRegQueueDriverLow = 0x090,
	kRegQueueDriverHigh = 0x094,
	kRegQueueDeviceLow = 0x0a0,
	kRegQueueDeviceHigh = 0x0a4,
	kRegConfigGeneration = 0x0fc,
};

constexpr uint32_t kMagic = 0x74726976;	// "virt"
constexpr uint32_t kVendor = 0x5446564b;	// "KVFT"
constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
constexpr uint32_t kIsrUsed = 1, kIsrConfig = 2;

void SetHalf(uint64_t *v, bool high, uint32_t x)
{
	*v = high ? (*v & 0xffffffffULL) | (uint64_t{x} << 32)
		  : (*v & ~0xffffffffULL) | x;
}

uint16_t Get16(const GuestMemory &m, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, m.base + gpa, 2);
	return v;
}

template <typename T> void Put(const GuestMemory &m, uint64_t gpa, T v)
{
	memcpy(m.base + gpa, &v, sizeof(v));
	m.Dirty(gpa, sizeof(v));
}
} // namespace

void Chain::Gather(const GuestMemory &m, uint64_t from, uint8_t *buf, uint64_t n) const
{
	uint64_t pos = 0;
	for (const Seg &s : segs) {
		if (s.write || !n)
			continue;
		if (from < pos + s.len) {
			uint64_t o = from - pos, k = std::min<uint64_t>(s.len - o, n);
			memcpy(buf, m.base + s.addr + o, k);
			buf += k, from += k, n -= k;
		}
		pos += s.len;
	}
}

void Chain::Scatter(const GuestMemory &m, uint64_t from, const uint8_t *buf, uint64_t n) const
{
	uint64_t pos = 0;
	for (const Seg &s : segs) {
		if (!s.write || !n)
			continue;
		if (from < pos + s.len) {
			uint64_t o = from - pos, k = std::min<uint64_t>(s.len - o, n);
			memcpy(m.base + s.addr + o, buf, k);
			m.Dirty(s.addr + o, k);
			buf += k, from += k, n -= k;
		}
		pos += s.len;
	}
}

bool Virtqueue::Usable(const GuestMemory &m) const
{
	uint64_t n = num;
	return n && n <= kMax && !(n & (n - 1)) && !(desc % 16) && !(avail % 2) &&
	       !(used % 4) && m.InRam(desc, 16 * n) && m.InRam(avail, 6 + 2 * n) &&
	       m.InRam(used, 6 + 8 * n);
}

Virtqueue::PopResult Virtqueue::Peek(const GuestMemory &m) const
{
	uint16_t ahead = static_cast<uint16_t>(Get16(m, avail + 2) - last_avail);
	return !ahead ? kEmpty : ahead > num ? kBad : kPopped;
}

Virtqueue::PopResult Virtqueue::Pop(const GuestMemory &m, Chain *c)
{
	PopResult r = Peek(m);
	if (r != kPopped)
		return r;
	c->head = Get16(m, avail + 4 + 2 * (last_avail % num));
	c->segs.clear();
	c->readable = c->writable = 0;
	uint16_t i = c->head;
	for (uint32_t k = 0;; k++) {
		if (i >= num || k >= num)
			return kBad;	// index out of range, or a loop
		uint64_t d = desc + 16 * uint64_t{i};
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		memcpy(&addr, m.base + d, 8);
		memcpy(&len, m.base + d + 8, 4);
		memcpy(&flags, m.base + d + 12, 2);
		memcpy(&next, m.base + d + 14, 2);
		if ((flags & kDescIndirect) || !m.InRam(addr, len))
			return kBad;
		bool w = flags & kDescWrite;
		c->segs.push_back({addr, len, w});
		(w ? c->writable : c->readable) += len;
		if (!(flags & kDescNext))
			break;
		i = next;
	}
	last_avail++;
	return kPopped;
}

void Virtqueue::Push(const GuestMemory &m, uint16_t head, uint32_t len) const
{
	// Called after Pop: the element of last_avail - 1.
	uint16_t idx = last_avail;
	uint64_t elem = used + 4 + 8 * (static_cast<uint16_t>(idx - 1) % num);
	Put<uint32_t>(m, elem, head);
	Put<uint32_t>(m, elem + 4, len);
	Put<uint16_t>(m, used + 2, idx);
}

void Virtqueue::Save(StateWriter *w) const
{
	w->Put(ready), w->Put(last_avail), w->Put(num);
	w->Put(desc), w->Put(avail), w->Put(used);
}

bool Virtqueue::Load(StateReader *r, const GuestMemory &m)
{
	Virtqueue q;
	q.ready = r->Get<uint8_t>();
	q.last_avail = r->Get<uint16_t>();
	q.num = r->Get<uint32_t>();
	q.desc = r->Get<uint64_t>();
	q.avail = r->Get<uint64_t>();
	q.used = r->Get<uint64_t>();
	if (q.ready > 1 || q.num > kMax || (q.ready && !q.Usable(m)))
		return false;
	*this = q;
	return true;
}

VirtioMmio::VirtioMmio(GuestMemory mem, std::function<void()> irq, uint32_t device_id,
		       uint64_t features, uint32_t queues)
	: mem_(std::move(mem)), irq_(std::move(irq)), device_id_(device_id),
	  features_(features), queues_(std::min(queues, kMaxQueues))
{
}

void VirtioMmio::Reset()
{
	status_ = 0;
	dev_features_sel_ = drv_features_sel_ = queue_sel_ = 0;
	drv_features_ = 0;
	isr_ = 0;
	for (Virtqueue &q : q_)
		q.Reset();
	OnReset();
}

void VirtioMmio::Read(uint64_t off, uint8_t *d, uint32_t len)
{
	memset(d, 0, len);
	if (off >= kRegConfig) {
		uint8_t cfg[kSize - kRegConfig] = {};
		Config(cfg);
		uint64_t o = off - kRegConfig;
		for (uint32_t i = 0; i < len && o + i < sizeof(cfg); i++)
			d[i] = cfg[o + i];
		return;
	}
	if (len != 4 || off % 4)
		return;
	bool qok = queue_sel_ < queues_;
	uint32_t v = 0;
	switch (off) {
	case kRegMagic: v = kMagic; break;
	case kRegVersion: v = 2; break;
	case kRegDeviceId: v = device_id_; break;
	case kRegVendorId: v = kVendor; break;
	case kRegDeviceFeatures:
		v = dev_features_sel_ < 2 ? static_cast<uint32_t>(features_ >> (32 * dev_features_sel_)) : 0;
		break;
	case kRegQueueNumMax: v = qok ? Virtqueue::kMax : 0; break;
	case kRegQueueReady: v = qok ? q_[queue_sel_].ready : 0; break;
	case kRegInterruptStatus: v = isr_; break;
	case kRegStatus: v = status_; break;
	case kRegConfigGeneration: v = 0; break;
	default: break;	// write-only or reserved: 0
	}
	for (int i = 0; i < 4; i++)
		d[i] = static_cast<uint8_t>(v >> (8 * i));
}

void VirtioMmio::Write(uint64_t off, const uint8_t *d, uint32_t len)
{
	if (off >= kRegConfig || len != 4 || off % 4)
		return;	// the config space is read-only; registers are 32-bit
	uint32_t v = d[0] | d[1] << 8 | d[2] << 16 | static_cast<uint32_t>(d[3]) << 24;
	// The selected queue, if it exists and may be set up (not ready).
	Virtqueue *q = queue_sel_ < queues_ && !q_[queue_sel_].ready ? &q_[queue_sel_] : nullptr;
	switch (off) {
	case kRegDeviceFeaturesSel: dev_features_sel_ = v; break;
	case kRegDriverFeatures:
		if (drv_features_sel_ < 2 && !(status_ & kFeaturesOk))
			SetHalf(&drv_features_, drv_features_sel_, v);
		break;
	case kRegDriverFeaturesSel: drv_features_sel_ = v; break;
	case kRegQueueSel: queue_sel_ = v; break;
	case kRegQueueNum:
		if (q)
			q->num = v;
		break;
	case kRegQueueReady:
		if (queue_sel_ >= queues_)
			break;
		if (!(v & 1)) {
			q_[queue_sel_].ready = 0;
		} else if (!q_[queue_sel_].Usable(mem_)) {
			NeedsReset();
		} else {
			q_[queue_sel_].ready = 1;
			q_[queue_sel_].last_avail = 0;
		}
		break;
	case kRegQueueNotify:
		if (v < queues_ && live() && q_[v].ready)
			Notify(v);
		break;
	case kRegInterruptAck: isr_ &= ~v; break;
	case kRegStatus:
		if (v == 0) {
			Reset();
			break;
		}
		if ((v & kFeaturesOk) && !(status_ & kFeaturesOk) &&
		    ((drv_features_ & ~features_) || !(drv_features_ & kVersion1)))
			v &= ~kFeaturesOk;	// refused: the driver reads it back clear
		status_ = static_cast<uint8_t>(v) | (status_ & kNeedsReset);
		break;
	case kRegQueueDescLow: case kRegQueueDescHigh:
		if (q)
			SetHalf(&q->desc, off == kRegQueueDescHigh, v);
		break;
	case kRegQueueDriverLow: case kRegQueueDriverHigh:
		if (q)
			SetHalf(&q->avail, off == kRegQueueDriverHigh, v);
		break;
	case kRegQueueDeviceLow: case kRegQueueDeviceHigh:
		if (q)
			SetHalf(&q->used, off == kRegQueueDeviceHigh, v);
		break;
	default: break;
	}
}

void VirtioMmio::NeedsReset()
{
	status_ |= kNeedsReset;
	if (status_ & kDriverOk) {
		isr_ |= kIsrConfig;
		irq_();
	}
}

void VirtioMmio::UsedInterrupt()
{
	isr_ |= kIsrUsed;
	irq_();
}

void VirtioMmio::SaveTransport(StateWriter *w) const
{
	w->Put(status_);
	w->Put(dev_features_sel_), w->Put(drv_features_sel_), w->Put(queue_sel_);
	w->Put(isr_);
	w->Put(drv_features_);
	for (uint32_t i = 0; i < queues_; i++)
		q_[i].Save(w);
}

bool VirtioMmio::LoadTransport(StateReader *r, Transport *t) const
{
	t->status = r->Get<uint8_t>();
	t->dev_features_sel = r->Get<uint32_t>();
	t->drv_features_sel = r->Get<uint32_t>();
	t->queue_sel = r->Get<uint32_t>();
	t->isr = r->Get<uint32_t>();
	t->drv_features = r->Get<uint64_t>();
	for (uint32_t i = 0; i < queues_; i++)
		if (!t->q[i].Load(r, mem_))
			return false;
	return true;
}

void VirtioMmio::ApplyTransport(const Transport &t)
{
	status_ = t.status;
	dev_features_sel_ = t.dev_features_sel, drv_features_sel_ = t.drv_features_sel;
	queue_sel_ = t.queue_sel;
	isr_ = t.isr;
	drv_features_ = t.drv_features;
	for (uint32_t i = 0; i < queues_; i++)
		q_[i] = t.q[i];
}

} // namespace kvmft::vmm
