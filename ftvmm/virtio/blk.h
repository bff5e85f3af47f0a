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
// request with a bad layout, length or sector, or beyond kSizeMax /
// kSegMax, completes with
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
#include "virtio/disk.h"
#include "virtio/mmio.h"

namespace kvmft::vmm {

class VirtioBlk : public VirtioMmio {
public:
	static constexpr uint64_t kBase = 0xd0000000;	// MMIO window
	static constexpr int kIrq = 5;			// PIC line
	static constexpr uint32_t kQueueMax = Virtqueue::kMax;
	static constexpr uint32_t kChunk = 16384;	// bytes per reader call
	// Request bounds, offered as VIRTIO_BLK_F_SIZE_MAX (1) and
	// VIRTIO_BLK_F_SEG_MAX (2): a descriptor holds at most kSizeMax bytes
	// and a chain at most kSegMax data descriptors (plus header and
	// status). A request beyond them completes with VIRTIO_BLK_S_IOERR, so
	// one request moves at most (kSegMax + 2) * kSizeMax bytes whatever
	// its descriptors alias.
	static constexpr uint32_t kSizeMax = 64 * 1024;
	static constexpr uint32_t kSegMax = 128;
	static_assert(uint64_t{kSegMax + 2} * kSizeMax < (uint64_t{1} << 32),
		      "a request's byte count must fit a used element's u32 len");
	// Features offered: VIRTIO_BLK_F_SIZE_MAX (1), VIRTIO_BLK_F_SEG_MAX
	// (2), VIRTIO_BLK_F_FLUSH (9), VIRTIO_F_VERSION_1 (32).
	static constexpr uint64_t kFeatures = (1ULL << 1) | (1ULL << 2) | (1ULL << 9) | kVersion1;

	using Reader = std::function<Status(uint64_t sector, uint8_t *dst, uint32_t bytes)>;
	VirtioBlk(GuestMemory mem, Disk *disk, std::function<void()> irq);
	void set_reader(Reader r) { reader_ = std::move(r); }
	Disk *disk() const { return disk_; }

	const char *name() const override { return "virtio-blk"; }
	// The failure that stopped the last notify, if any (cleared).
	Status TakeError() { return std::exchange(err_, Status::Ok()); }
	uint64_t read_bytes() const { return read_bytes_; }
	uint64_t written_bytes() const { return written_bytes_; }

	uint32_t state_id() const override;
	void Save(std::vector<uint8_t> *out) const override;
	Status Load(const uint8_t *data, size_t len) override;

private:
	void Config(uint8_t *cfg) const override;
	void Notify(uint32_t queue) override;
	// false: the chain is unusable (device needs reset). Else *written =
	// bytes written to device-writable buffers, status byte included.
	bool Process(const Chain &c, uint32_t *written);
	uint8_t Request(const Chain &c, uint64_t wr, uint32_t *written);

	Disk *disk_;
	Reader reader_;
	Status err_;
	uint64_t read_bytes_ = 0, written_bytes_ = 0;
};

} // namespace kvmft::vmm
