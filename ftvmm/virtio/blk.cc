// virtio_blk.cc - virtio-mmio v2 block device (virtio_blk.h).
#include "virtio/blk.h"

#include <linux/kvm_ft_vmm.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "hw/state_io.h"

namespace kvmft::vmm {

namespace {
constexpr uint32_t kBlockDevice = 2;
constexpr uint32_t kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8;
constexpr uint8_t kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupp = 2;
constexpr char kId[] = "kvm-ft virtio-blk";	// VIRTIO_BLK_T_GET_ID, <= 20 bytes
} // namespace

VirtioBlk::VirtioBlk(GuestMemory mem, Disk *disk, std::function<void()> irq)
	: VirtioMmio(std::move(mem), std::move(irq), kBlockDevice, kFeatures, 1), disk_(disk),
	  reader_([disk](uint64_t sector, uint8_t *dst, uint32_t bytes) {
		  return disk->Read(sector, dst, bytes);
	  })
{
}

void VirtioBlk::Config(uint8_t *cfg) const
{
	// struct virtio_blk_config: u64 capacity (sectors), u32 size_max,
	// u32 seg_max, the rest 0.
	uint64_t cap = disk_->sectors();
	memcpy(cfg, &cap, 8);
	memcpy(cfg + 8, &kSizeMax, 4);
	memcpy(cfg + 12, &kSegMax, 4);
}

void VirtioBlk::Notify(uint32_t)
{
	Virtqueue &q = q_[0];
	bool done = false;
	Chain c;
	for (;;) {
		Virtqueue::PopResult r = q.Pop(mem_, &c);
		if (r == Virtqueue::kEmpty)
			break;
		uint32_t written = 0;
		if (r == Virtqueue::kBad || !Process(c, &written)) {
			NeedsReset();
			break;
		}
		if (!err_.ok()) {
			q.last_avail--;	// the host failed: not completed
			return;
		}
		q.Push(mem_, c.head, written);
		done = true;
	}
	if (done)
		UsedInterrupt();
}

bool VirtioBlk::Process(const Chain &c, uint32_t *written)
{
	const Chain::Seg &last = c.segs.back();
	if (!last.write || !last.len)
		return false;	// nowhere to put the status
	uint8_t st = Request(c, c.writable - 1, written);
	if (!err_.ok())
		return true;
	mem_.base[last.addr + last.len - 1] = st;
	mem_.Dirty(last.addr + last.len - 1, 1);
	*written += 1;
	return true;
}

uint8_t VirtioBlk::Request(const Chain &c, uint64_t wr, uint32_t *written)
{
	*written = 0;
	uint64_t rd = c.readable;
	bool seen_write = false;
	for (const Chain::Seg &s : c.segs) {
		if (!s.write && seen_write)
			return kStatusIoErr;	// device-readable after device-writable
		seen_write |= s.write;
	}
	if (c.segs.size() > kSegMax + 2)
		return kStatusIoErr;
	for (const Chain::Seg &s : c.segs)
		if (s.len > kSizeMax)
			return kStatusIoErr;
	if (rd < 16)
		return kStatusIoErr;
	uint8_t hdr[16];
	c.Gather(mem_, 0, hdr, 16);
	uint32_t type;
	uint64_t sector;
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	uint64_t cap = disk_->sectors();
	auto fits = [&](uint64_t bytes) {
		return bytes % kSectorSize == 0 && sector <= cap &&
		       bytes / kSectorSize <= cap - sector;
	};
	switch (type) {
	case kTypeIn: {
		if (rd != 16 || !fits(wr))
			return kStatusIoErr;
		std::vector<uint8_t> buf(std::min<uint64_t>(wr, kChunk));
		for (uint64_t off = 0; off < wr; off += kChunk) {
			uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(wr - off, kChunk));
			err_ = reader_(sector + off / kSectorSize, buf.data(), n);
			if (!err_.ok())
				return kStatusIoErr;
			c.Scatter(mem_, off, buf.data(), n);
		}
		read_bytes_ += wr;
		*written = static_cast<uint32_t>(wr);
		return kStatusOk;
	}
	case kTypeOut: {
		uint64_t bytes = rd - 16;
		if (!fits(bytes))
			return kStatusIoErr;
		std::vector<uint8_t> buf(std::min<uint64_t>(bytes, kChunk));
		for (uint64_t off = 0; off < bytes; off += kChunk) {
			uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(bytes - off, kChunk));
			c.Gather(mem_, 16 + off, buf.data(), n);
			err_ = disk_->WriteAt(sector + off / kSectorSize, buf.data(), n);
			if (!err_.ok())
				return kStatusIoErr;
		}
		written_bytes_ += bytes;
		return kStatusOk;
	}
	case kTypeFlush:
		if (rd != 16)
			return kStatusIoErr;
		err_ = disk_->Flush();
		return kStatusOk;
	case kTypeGetId: {
		if (rd != 16)
			return kStatusIoErr;
		uint8_t id[20] = {};
		memcpy(id, kId, sizeof(kId) - 1);
		uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(wr, sizeof(id)));
		c.Scatter(mem_, 0, id, n);
		*written = n;
		return kStatusOk;
	}
	default:
		return kStatusUnsupp;
	}
}

uint32_t VirtioBlk::state_id() const { return KVM_FT_DEV_VIRTIO_BLK; }

void VirtioBlk::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	w.Put(disk_->sectors());
	SaveTransport(&w);
	const auto &ov = disk_->overlay();
	w.Put(disk_->next_seq());
	w.Put(static_cast<uint32_t>(ov.size()));
	for (const Disk::Write &x : ov) {
		w.Put(x.seq);
		w.Put(x.sector);
		w.Put(static_cast<uint32_t>(x.data.size()));
		w.PutBytes(x.data.data(), x.data.size());
	}
}

Status VirtioBlk::Load(const uint8_t *data, size_t len)
{
	StateReader r(data, len);
	uint64_t cap = r.Get<uint64_t>();
	Transport t;
	if (!LoadTransport(&r, &t))
		return Status::Error(EINVAL, "virtio-blk state: malformed");
	const uint64_t next_seq = r.Get<uint64_t>();
	uint32_t nw = r.Get<uint32_t>();
	std::deque<Disk::Write> ov;
	for (uint32_t i = 0; i < nw; i++) {
		Disk::Write x{};
		x.seq = r.Get<uint64_t>();
		x.sector = r.Get<uint64_t>();
		uint32_t n = r.Get<uint32_t>();
		if (n > len || n % kSectorSize || x.sector > cap || n / kSectorSize > cap - x.sector ||
		    x.seq >= next_seq || (!ov.empty() && x.seq <= ov.back().seq))
			return Status::Error(EINVAL, "virtio-blk state: bad pending write");
		x.data.resize(n);
		r.GetBytes(x.data.data(), n);
		ov.push_back(std::move(x));
	}
	if (!r.done())
		return Status::Error(EINVAL, "virtio-blk state: malformed");
	if (cap != disk_->sectors())
		return Status::Error(EINVAL, fmt::format(
			"virtio-blk state: the disk had {} sectors, {} has {}", cap,
			disk_->path(), disk_->sectors()));
	ApplyTransport(t);
	// A replayer keeps its own overlay: it holds every write it replayed,
	// a superset of the primary's pending ones (ftvmm.md "Disk writes").
	// An SMP secondary takes the epoch's pending writes (kEpochs) or
	// writes the new ones to its own copy (kEpochsPrivate).
	switch (disk_->mode()) {
	case Disk::kReplay:
	case Disk::kReplayPrivate:
		return Status::Ok();
	case Disk::kEpochs:
	case Disk::kEpochsPrivate:
		return disk_->ApplyEpoch(std::move(ov), next_seq).Wrap("virtio-blk state");
	case Disk::kDirect:
		disk_->SetOverlay(std::move(ov), next_seq);
		return disk_->ApplyAll();
	case Disk::kHold:
		break;
	}
	disk_->SetOverlay(std::move(ov), next_seq);
	return Status::Ok();
}

} // namespace kvmft::vmm
