// virtio_net.h - virtio-net on the virtio-mmio version 2 transport
// (Documentation/ftvmm.md "virtio-net" lists it register by register):
// receiveq (0) and transmitq (1), VIRTIO_F_VERSION_1 and VIRTIO_NET_F_MAC,
// no offloads.
//
// Transmit is synchronous in the QueueNotify(1) write (a deterministic
// exit): each frame goes to the NetLink, which sends, holds or keeps it
// per the output rule (net_link.h). Receive is driven by the engine: at a
// point where it may deliver an interrupt it gives a frame to Receive(),
// which writes it into the next receive buffer and raises IRQ 6; the
// engine logs the frame there so a replayer delivers it at the same
// position.
//
// Thread safety: none; used by the vCPU thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/status.h"
#include "virtio/net_link.h"
#include "virtio/mmio.h"

namespace kvmft::vmm {

class VirtioNet : public VirtioMmio {
public:
	static constexpr uint64_t kBase = 0xd0001000;	// MMIO window
	static constexpr int kIrq = 6;			// PIC line
	static constexpr uint32_t kHdr = 12;		// struct virtio_net_hdr (v1)
	static constexpr uint32_t kMinFrame = 14, kMaxFrame = NetLink::kMaxFrame;
	// Features offered: VIRTIO_NET_F_MAC (5), VIRTIO_F_VERSION_1 (32).
	static constexpr uint64_t kFeatures = (1ULL << 5) | kVersion1;
	using Mac = std::array<uint8_t, 6>;

	enum RxResult {
		kDelivered,	// written, used ring updated, IRQ raised
		kDropped,	// the buffer was too small: frame dropped, buffer kept
		kNoBuffer,	// the guest offers none (or the device is not live)
		kBadChain,	// the chain was malformed: DEVICE_NEEDS_RESET
	};

	VirtioNet(GuestMemory mem, NetLink *link, Mac mac, std::function<void()> irq);
	NetLink *link() const { return link_; }
	const Mac &mac() const { return mac_; }
	const char *name() const override { return "virtio-net"; }

	// Called when the guest notifies the receiveq (it added buffers);
	// SMP uses it to wake vCPU 0 for frames that found no buffer.
	void set_on_rx_buffers(std::function<void()> fn) { on_rx_buffers_ = std::move(fn); }
	// Called (io_mu held) after a transmitq notify put frames on the
	// link; SMP uses it to end an epoch early while replies wait.
	void set_on_tx(std::function<void()> fn) { on_tx_ = std::move(fn); }
	// The guest offers a receive buffer (or a malformed avail index the
	// next Receive reports).
	bool CanReceive() const;
	RxResult Receive(const uint8_t *frame, size_t len);
	uint64_t rx_frames() const { return rx_frames_; }
	uint64_t rx_dropped() const { return rx_dropped_; }
	uint64_t tx_frames() const { return tx_frames_; }
	uint64_t tx_errors() const { return tx_errors_; }

	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	void Config(uint8_t *cfg) const override;
	void Notify(uint32_t queue) override;
	void Transmit();

	NetLink *link_;
	Mac mac_;
	std::function<void()> on_rx_buffers_;
	std::function<void()> on_tx_;
	uint64_t rx_frames_ = 0, rx_dropped_ = 0, tx_frames_ = 0, tx_errors_ = 0;
};

} // namespace kvmft::vmm
