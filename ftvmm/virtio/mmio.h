// virtio_mmio.h - the virtio-mmio version 2 transport and split
// virtqueues shared by virtio-blk and virtio-net (Documentation/ftvmm.md
// lists the registers). A device derives from VirtioMmio, which owns the
// transport registers and the queues, and supplies its config space and
// what a QueueNotify does.
//
// Every check on guest-supplied rings happens here: a queue is usable
// only if its rings lie in RAM (QueueReady), a chain only if its indices,
// length and buffers are sound (Virtqueue::Pop). What the guest cannot be
// trusted with sets DEVICE_NEEDS_RESET (NeedsReset()).
//
// Thread safety: none; used by the vCPU thread.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "hw/bus.h"
#include "hw/stateful.h"
#include "hw/state_io.h"

namespace kvmft::vmm {

// Guest RAM as a device sees it. dirty(gpa, len) is told of every byte
// the device writes (KVM's dirty log does not see them); may be empty.
struct GuestMemory {
	uint8_t *base = nullptr;
	uint64_t bytes = 0;
	std::function<void(uint64_t gpa, uint64_t len)> dirty;

	bool InRam(uint64_t gpa, uint64_t len) const
	{
		return gpa <= bytes && len <= bytes - gpa;
	}
	void Dirty(uint64_t gpa, uint64_t len) const
	{
		if (dirty && len)
			dirty(gpa, len);
	}
};

// A descriptor chain: its buffers in order and how many bytes of them the
// device may read (driver-written) and write.
struct Chain {
	struct Seg {
		uint64_t addr;
		uint32_t len;
		bool write;
	};
	uint16_t head = 0;
	std::vector<Seg> segs;
	uint64_t readable = 0, writable = 0;

	// Copies between the chain's device-readable (Gather) or
	// device-writable (Scatter) bytes [from, from + n) and buf; stops at
	// the chain's end.
	void Gather(const GuestMemory &m, uint64_t from, uint8_t *buf, uint64_t n) const;
	void Scatter(const GuestMemory &m, uint64_t from, const uint8_t *buf, uint64_t n) const;
};

// One split virtqueue (virtio 1.x 2.7). In-order completion: the used
// index equals the count of chains popped.
struct Virtqueue {
	static constexpr uint32_t kMax = 256;
	enum PopResult { kEmpty, kPopped, kBad };

	uint32_t num = 0;
	uint8_t ready = 0;
	uint64_t desc = 0, avail = 0, used = 0;
	uint16_t last_avail = 0;

	void Reset() { *this = Virtqueue{}; }
	// The rings of a queue of `num` entries fit RAM and are aligned.
	bool Usable(const GuestMemory &m) const;
	// The driver made a chain available that was not popped yet. kBad:
	// the avail index runs more than the queue size ahead.
	PopResult Peek(const GuestMemory &m) const;
	// Takes the next available chain. kBad: the chain cannot be trusted
	// (index out of range, a loop, indirect, a buffer outside RAM, the
	// avail index running ahead).
	PopResult Pop(const GuestMemory &m, Chain *c);
	// Completes chain `head` with `len` bytes written.
	void Push(const GuestMemory &m, uint16_t head, uint32_t len) const;

	void Save(StateWriter *w) const;
	// false: malformed.
	bool Load(StateReader *r, const GuestMemory &m);
};

class VirtioMmio : public BusDevice, public Stateful {
public:
	static constexpr uint64_t kSize = 0x200;
	// Device status bits (virtio 1.x 2.1).
	static constexpr uint8_t kAcknowledge = 1, kDriver = 2, kDriverOk = 4,
				 kFeaturesOk = 8, kNeedsReset = 64, kFailed = 128;
	static constexpr uint64_t kVersion1 = 1ULL << 32;
	static constexpr uint64_t kRegConfig = 0x100;
	static constexpr uint32_t kMaxQueues = 2;

	void Read(uint64_t off, uint8_t *d, uint32_t len) override;
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
	uint8_t status() const { return status_; }

protected:
	// features: offered (VIRTIO_F_VERSION_1 must be among them and be
	// accepted); queues: how many (1..kMaxQueues).
	VirtioMmio(GuestMemory mem, std::function<void()> irq, uint32_t device_id,
		   uint64_t features, uint32_t queues);
	// The config space, kSize - kRegConfig bytes, read-only.
	virtual void Config(uint8_t *cfg) const = 0;
	// QueueNotify with a valid queue index, when the device is live.
	virtual void Notify(uint32_t queue) = 0;
	// Called after a driver reset (Status 0).
	virtual void OnReset() {}

	bool live() const
	{
		return (status_ & kDriverOk) && !(status_ & kNeedsReset);
	}
	void NeedsReset();
	// Used buffers: InterruptStatus bit 0 and an edge on the line.
	void UsedInterrupt();
	// Transport registers and queues, in the layout of log-format.md.
	// Load reads and checks a saved transport; Apply installs it (after
	// the device checked the rest of its state).
	struct Transport {
		uint8_t status = 0;
		uint32_t dev_features_sel = 0, drv_features_sel = 0, queue_sel = 0;
		uint32_t isr = 0;
		uint64_t drv_features = 0;
		Virtqueue q[kMaxQueues];
	};
	void SaveTransport(StateWriter *w) const;
	bool LoadTransport(StateReader *r, Transport *t) const;
	void ApplyTransport(const Transport &t);

	GuestMemory mem_;
	Virtqueue q_[kMaxQueues];

private:
	void Reset();
	std::function<void()> irq_;
	uint32_t device_id_;
	uint64_t features_;
	uint32_t queues_;
	uint8_t status_ = 0;
	uint32_t dev_features_sel_ = 0, drv_features_sel_ = 0, queue_sel_ = 0;
	uint64_t drv_features_ = 0;
	uint32_t isr_ = 0;
};

} // namespace kvmft::vmm
