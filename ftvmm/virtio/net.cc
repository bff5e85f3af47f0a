// virtio_net.cc - virtio-mmio v2 network device (virtio_net.h).
#include "virtio/net.h"

#include <linux/kvm_ft_vmm.h>

#include <cstring>
#include <fmt/format.h>

#include "hw/state_io.h"

namespace kvmft::vmm {

namespace {
constexpr uint32_t kNetDevice = 1;
constexpr uint32_t kRxQ = 0, kTxQ = 1;
constexpr uint32_t kMaxPending = 1 << 16;	// frames in a loaded state
} // namespace

VirtioNet::VirtioNet(GuestMemory mem, NetLink *link, Mac mac, std::function<void()> irq)
	: VirtioMmio(std::move(mem), std::move(irq), kNetDevice, kFeatures, 2), link_(link),
	  mac_(mac)
{
}

void VirtioNet::Config(uint8_t *cfg) const
{
	// struct virtio_net_config: mac first; status and the rest are not
	// offered (0).
	memcpy(cfg, mac_.data(), mac_.size());
}

void VirtioNet::Notify(uint32_t queue)
{
	if (queue == kTxQ)
		Transmit();
	// kRxQ: buffers were added; the engine delivers at its next point.
	else if (on_rx_buffers_)
		on_rx_buffers_();
}

void VirtioNet::Transmit()
{
	Virtqueue &q = q_[kTxQ];
	bool done = false;
	const uint64_t sent = tx_frames_;
	Chain c;
	uint8_t buf[kHdr + kMaxFrame];
	for (;;) {
		Virtqueue::PopResult r = q.Pop(mem_, &c);
		if (r == Virtqueue::kEmpty)
			break;
		if (r == Virtqueue::kBad) {
			NeedsReset();
			break;
		}
		if (c.writable || c.readable < kHdr + kMinFrame || c.readable > sizeof(buf)) {
			tx_errors_++;
		} else {
			c.Gather(mem_, 0, buf, c.readable);
			link_->Send(buf + kHdr, c.readable - kHdr);
			tx_frames_++;
		}
		q.Push(mem_, c.head, 0);
		done = true;
	}
	if (done)
		UsedInterrupt();
	if (tx_frames_ != sent && on_tx_)
		on_tx_();
}

bool VirtioNet::CanReceive() const
{
	const Virtqueue &q = q_[kRxQ];
	return live() && q.ready && q.Peek(mem_) != Virtqueue::kEmpty;
}

VirtioNet::RxResult VirtioNet::Receive(const uint8_t *frame, size_t len)
{
	if (!CanReceive())
		return kNoBuffer;
	Virtqueue &q = q_[kRxQ];
	Chain c;
	if (q.Pop(mem_, &c) != Virtqueue::kPopped || c.readable) {
		NeedsReset();
		return kBadChain;
	}
	if (c.writable < kHdr + len) {
		q.last_avail--;	// not taken: the buffer stays available
		rx_dropped_++;
		return kDropped;
	}
	uint8_t hdr[kHdr] = {};
	hdr[10] = 1;	// num_buffers
	c.Scatter(mem_, 0, hdr, kHdr);
	c.Scatter(mem_, kHdr, frame, len);
	q.Push(mem_, c.head, static_cast<uint32_t>(kHdr + len));
	rx_frames_++;
	UsedInterrupt();
	return kDelivered;
}

uint32_t VirtioNet::state_id() const { return KVM_FT_DEV_VIRTIO_NET; }

void VirtioNet::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	w.PutBytes(mac_.data(), mac_.size());
	SaveTransport(&w);
	w.Put(link_->next_seq());
	auto frames = link_->pending();
	w.Put(static_cast<uint32_t>(frames.size()));
	for (const NetLink::Frame &f : frames) {
		w.Put(f.seq), w.Put(f.pos);
		w.Put(static_cast<uint32_t>(f.data.size()));
		w.PutBytes(f.data.data(), f.data.size());
	}
}

Status VirtioNet::Load(const uint8_t *data, size_t len)
{
	StateReader r(data, len);
	Mac mac;
	r.GetBytes(mac.data(), mac.size());
	Transport t;
	if (!LoadTransport(&r, &t))
		return Status::Error(EINVAL, "virtio-net state: malformed");
	uint64_t seq = r.Get<uint64_t>();
	uint32_t n = r.Get<uint32_t>();
	if (n > kMaxPending)
		return Status::Error(EINVAL, "virtio-net state: too many pending frames");
	std::vector<NetLink::Frame> frames(n);
	for (NetLink::Frame &f : frames) {
		f.seq = r.Get<uint64_t>();
		f.pos = r.Get<uint64_t>();
		uint32_t bytes = r.Get<uint32_t>();
		if (bytes < kMinFrame || bytes > kMaxFrame || f.seq >= seq)
			return Status::Error(EINVAL, "virtio-net state: bad pending frame");
		f.data.resize(bytes);
		r.GetBytes(f.data.data(), bytes);
	}
	if (!r.done())
		return Status::Error(EINVAL, "virtio-net state: malformed");
	if (mac != mac_)
		return Status::Error(EINVAL, "virtio-net state: the VM had another MAC "
				     "(use the primary's --mac)");
	ApplyTransport(t);
	link_->set_next_seq(seq);
	link_->SetPending(std::move(frames));
	return Status::Ok();
}

} // namespace kvmft::vmm
