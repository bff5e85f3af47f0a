// virtio_blk.h - virtio-blk on the virtio-mmio version 2 transport
// (Documentation/ftvmm.md "virtio-blk" lists it register by register):
// one split virtqueue, VIRTIO_F_VERSION_1 required, the disk a file
// (disk.h) whose size gives the capacity.
//
// Requests are carried out synchronously when the guest writes
// QueueNotify: that MMIO write is a deterministic exit, so the data
// written into guest memory, the used ring update and the interrupt (the
// PIC line kIrq) happen at that position on the primary and identically
// in replay. The data a read returns comes through the reader function,
// which the engine sets to log it (primary) or to return the logged data
// (replay); by default it reads the disk.
//
// Malformed requests never reach the host: a descriptor outside RAM, an
// index out of range, a chain looping or longer than the queue, an
// indirect descriptor (not offered), an avail index running ahead, or a
// chain without a device-writable status byte at its end put the device
// in DEVICE_NEEDS_RESET (with a configuration-change interrupt); a
// request with a bad layout, length or sector completes with
// VIRTIO_BLK_S_IOERR; an unknown type with VIRTIO_BLK_S_UNSUPP.
//
// A failure of the host (disk I/O error) or of the reader (divergence,
// log error) stops request processing; TakeError() returns it and the
// engine ends the run.
//
// Thread safety: none; used by the vCPU thread.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/status.h"
#include "bus.h"
#include "devices.h"
#include "disk.h"

namespace kvmft::vmm {

// Guest RAM as a device sees it. dirty(gpa, len) is told of every byte
// the device writes (KVM's dirty log does not see them); may be empty.
struct GuestMemory {
	uint8_t *base = nullptr;
	uint64_t bytes = 0;
	std::function<void(uint64_t gpa, uint64_t len)> dirty;
};

class VirtioBlk : public BusDevice, public Stateful {
public:
	static constexpr uint64_t kBase = 0xd0000000;	// MMIO window
	static constexpr uint64_t kSize = 0x200;
	static constexpr int kIrq = 5;			// PIC line
	static constexpr uint32_t kQueueMax = 256;
	static constexpr uint32_t kChunk = 16384;	// bytes per reader call
	// Device status bits (virtio 1.x 2.1).
	static constexpr uint8_t kAcknowledge = 1, kDriver = 2, kDriverOk = 4,
				 kFeaturesOk = 8, kNeedsReset = 64, kFailed = 128;
	// Features offered: VIRTIO_BLK_F_FLUSH (9), VIRTIO_F_VERSION_1 (32).
	static constexpr uint64_t kFeatures = (1ULL << 9) | (1ULL << 32);

	using Reader = std::function<Status(uint64_t sector, uint8_t *dst, uint32_t bytes)>;
	VirtioBlk(GuestMemory mem, Disk *disk, std::function<void()> irq);
	void set_reader(Reader r) { reader_ = std::move(r); }
	Disk *disk() const { return disk_; }

	void Read(uint64_t off, uint8_t *d, uint32_t len) override;
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override;
	const char *name() const override { return "virtio-blk"; }
	// The failure that stopped the last notify, if any (cleared).
	Status TakeError() { return std::exchange(err_, Status::Ok()); }
	uint8_t status() const { return status_; }
	uint64_t read_bytes() const { return read_bytes_; }
	uint64_t written_bytes() const { return written_bytes_; }

	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	struct Seg {
		uint64_t addr;
		uint32_t len;
		bool write;
	};
	void Reset();
	void SetReady(bool ready);
	void Notify();
	void NeedsReset();
	// false: the chain is unusable (device needs reset). Else *written =
	// bytes written to device-writable buffers, status byte included.
	bool Process(uint16_t head, uint32_t *written);
	uint8_t Request(const std::vector<Seg> &segs, uint64_t rd, uint64_t wr,
			uint32_t *written);
	bool InRam(uint64_t gpa, uint64_t len) const;
	// A queue of n entries at these addresses can be used (QueueReady).
	bool QueueOk(uint64_t n, uint64_t desc, uint64_t avail, uint64_t used) const;
	uint16_t Get16(uint64_t gpa) const;
	void Put16(uint64_t gpa, uint16_t v);
	void Put32(uint64_t gpa, uint32_t v);
	// Copies between the request's device-readable (gather) or
	// device-writable (scatter) bytes [from, from + n) and buf.
	void Gather(const std::vector<Seg> &segs, uint64_t from, uint8_t *buf, uint64_t n) const;
	void Scatter(const std::vector<Seg> &segs, uint64_t from, const uint8_t *buf, uint64_t n);
	void Dirty(uint64_t gpa, uint64_t len);

	GuestMemory mem_;
	Disk *disk_;
	std::function<void()> irq_;
	Reader reader_;
	Status err_;
	// Registers (state).
	uint8_t status_ = 0;
	uint32_t dev_features_sel_ = 0, drv_features_sel_ = 0, queue_sel_ = 0;
	uint64_t drv_features_ = 0;
	uint32_t isr_ = 0;
	uint32_t queue_num_ = 0;
	uint8_t queue_ready_ = 0;
	uint64_t desc_ = 0, avail_ = 0, used_ = 0;
	uint16_t last_avail_ = 0;	// also the used index: completion is in order
	uint64_t read_bytes_ = 0, written_bytes_ = 0;
};

} // namespace kvmft::vmm
