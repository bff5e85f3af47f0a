// virtio_blk.cc - virtio-mmio v2 block device (virtio_blk.h).
#include "virtio_blk.h"

#include <linux/kvm_ft_vmm.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "state_io.h"

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
	kRegConfig = 0x100,
};

constexpr uint32_t kMagic = 0x74726976;	// "virt"
constexpr uint32_t kVendor = 0x5446564b;	// "KVFT"
constexpr uint32_t kBlockDevice = 2;
constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
constexpr uint32_t kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8;
constexpr uint8_t kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupp = 2;
constexpr uint32_t kIsrUsed = 1, kIsrConfig = 2;
constexpr char kId[] = "kvm-ft virtio-blk";	// VIRTIO_BLK_T_GET_ID, <= 20 bytes

void SetHalf(uint64_t *v, bool high, uint32_t x)
{
	*v = high ? (*v & 0xffffffffULL) | (uint64_t{x} << 32)
		  : (*v & ~0xffffffffULL) | x;
}
} // namespace

VirtioBlk::VirtioBlk(GuestMemory mem, Disk *disk, std::function<void()> irq)
	: mem_(std::move(mem)), disk_(disk), irq_(std::move(irq)),
	  reader_([disk](uint64_t sector, uint8_t *dst, uint32_t bytes) {
		  return disk->Read(sector, dst, bytes);
	  })
{
}

void VirtioBlk::Reset()
{
	status_ = 0;
	dev_features_sel_ = drv_features_sel_ = queue_sel_ = 0;
	drv_features_ = 0;
	isr_ = 0;
	queue_num_ = 0;
	queue_ready_ = 0;
	desc_ = avail_ = used_ = 0;
	last_avail_ = 0;
}

void VirtioBlk::Read(uint64_t off, uint8_t *d, uint32_t len)
{
	memset(d, 0, len);
	if (off >= kRegConfig) {
		// struct virtio_blk_config: capacity (sectors) first, the rest 0.
		uint8_t cfg[kSize - kRegConfig] = {};
		uint64_t cap = disk_->sectors();
		for (int i = 0; i < 8; i++)
			cfg[i] = static_cast<uint8_t>(cap >> (8 * i));
		uint64_t o = off - kRegConfig;
		for (uint32_t i = 0; i < len && o + i < sizeof(cfg); i++)
			d[i] = cfg[o + i];
		return;
	}
	if (len != 4 || off % 4)
		return;
	uint32_t v = 0;
	switch (off) {
	case kRegMagic: v = kMagic; break;
	case kRegVersion: v = 2; break;
	case kRegDeviceId: v = kBlockDevice; break;
	case kRegVendorId: v = kVendor; break;
	case kRegDeviceFeatures:
		v = dev_features_sel_ < 2 ? static_cast<uint32_t>(kFeatures >> (32 * dev_features_sel_)) : 0;
		break;
	case kRegQueueNumMax: v = queue_sel_ == 0 ? kQueueMax : 0; break;
	case kRegQueueReady: v = queue_sel_ == 0 ? queue_ready_ : 0; break;
	case kRegInterruptStatus: v = isr_; break;
	case kRegStatus: v = status_; break;
	case kRegConfigGeneration: v = 0; break;
	default: break;	// write-only or reserved: 0
	}
	for (int i = 0; i < 4; i++)
		d[i] = static_cast<uint8_t>(v >> (8 * i));
}

void VirtioBlk::Write(uint64_t off, const uint8_t *d, uint32_t len)
{
	if (off >= kRegConfig || len != 4 || off % 4)
		return;	// the config space is read-only; registers are 32-bit
	uint32_t v = d[0] | d[1] << 8 | d[2] << 16 | static_cast<uint32_t>(d[3]) << 24;
	bool q0 = queue_sel_ == 0 && !queue_ready_;	// queue 0 may be set up
	switch (off) {
	case kRegDeviceFeaturesSel: dev_features_sel_ = v; break;
	case kRegDriverFeatures:
		if (drv_features_sel_ < 2 && !(status_ & kFeaturesOk))
			SetHalf(&drv_features_, drv_features_sel_, v);
		break;
	case kRegDriverFeaturesSel: drv_features_sel_ = v; break;
	case kRegQueueSel: queue_sel_ = v; break;
	case kRegQueueNum:
		if (q0)
			queue_num_ = v;
		break;
	case kRegQueueReady:
		if (queue_sel_ == 0)
			SetReady(v & 1);
		break;
	case kRegQueueNotify:
		if (v == 0)
			Notify();
		break;
	case kRegInterruptAck: isr_ &= ~v; break;
	case kRegStatus:
		if (v == 0) {
			Reset();
			break;
		}
		if ((v & kFeaturesOk) && !(status_ & kFeaturesOk) &&
		    ((drv_features_ & ~kFeatures) || !(drv_features_ & (1ULL << 32))))
			v &= ~kFeaturesOk;	// refused: the driver reads it back clear
		status_ = static_cast<uint8_t>(v) | (status_ & kNeedsReset);
		break;
	case kRegQueueDescLow: case kRegQueueDescHigh:
		if (q0)
			SetHalf(&desc_, off == kRegQueueDescHigh, v);
		break;
	case kRegQueueDriverLow: case kRegQueueDriverHigh:
		if (q0)
			SetHalf(&avail_, off == kRegQueueDriverHigh, v);
		break;
	case kRegQueueDeviceLow: case kRegQueueDeviceHigh:
		if (q0)
			SetHalf(&used_, off == kRegQueueDeviceHigh, v);
		break;
	default: break;
	}
}

bool VirtioBlk::InRam(uint64_t gpa, uint64_t len) const
{
	return gpa <= mem_.bytes && len <= mem_.bytes - gpa;
}

bool VirtioBlk::QueueOk(uint64_t n, uint64_t desc, uint64_t avail, uint64_t used) const
{
	return n && n <= kQueueMax && !(n & (n - 1)) && !(desc % 16) && !(avail % 2) &&
	       !(used % 4) && InRam(desc, 16 * n) && InRam(avail, 6 + 2 * n) &&
	       InRam(used, 6 + 8 * n);
}

void VirtioBlk::SetReady(bool ready)
{
	if (!ready) {
		queue_ready_ = 0;
		return;
	}
	if (!QueueOk(queue_num_, desc_, avail_, used_)) {
		NeedsReset();
		return;
	}
	queue_ready_ = 1;
	last_avail_ = 0;
}

void VirtioBlk::NeedsReset()
{
	status_ |= kNeedsReset;
	if (status_ & kDriverOk) {
		isr_ |= kIsrConfig;
		irq_();
	}
}

uint16_t VirtioBlk::Get16(uint64_t gpa) const
{
	uint16_t v;
	memcpy(&v, mem_.base + gpa, 2);
	return v;
}

void VirtioBlk::Put16(uint64_t gpa, uint16_t v)
{
	memcpy(mem_.base + gpa, &v, 2);
	Dirty(gpa, 2);
}

void VirtioBlk::Put32(uint64_t gpa, uint32_t v)
{
	memcpy(mem_.base + gpa, &v, 4);
	Dirty(gpa, 4);
}

void VirtioBlk::Dirty(uint64_t gpa, uint64_t len)
{
	if (mem_.dirty && len)
		mem_.dirty(gpa, len);
}

void VirtioBlk::Notify()
{
	if (!(status_ & kDriverOk) || (status_ & kNeedsReset) || !queue_ready_)
		return;
	bool done = false;
	uint16_t avail_idx = Get16(avail_ + 2);
	while (last_avail_ != avail_idx) {
		if (static_cast<uint16_t>(avail_idx - last_avail_) > queue_num_) {
			NeedsReset();	// the driver claims more buffers than slots
			break;
		}
		uint16_t head = Get16(avail_ + 4 + 2 * (last_avail_ % queue_num_));
		uint32_t written = 0;
		if (!Process(head, &written)) {
			NeedsReset();
			break;
		}
		if (!err_.ok())
			return;	// the host failed: the request is not completed
		uint64_t elem = used_ + 4 + 8 * (last_avail_ % queue_num_);
		Put32(elem, head);
		Put32(elem + 4, written);
		last_avail_++;
		Put16(used_ + 2, last_avail_);
		done = true;
	}
	if (done) {
		isr_ |= kIsrUsed;
		irq_();
	}
}

bool VirtioBlk::Process(uint16_t head, uint32_t *written)
{
	std::vector<Seg> segs;
	uint64_t rd = 0, wr = 0;
	uint16_t i = head;
	for (uint32_t n = 0;; n++) {
		if (i >= queue_num_ || n >= queue_num_)
			return false;	// index out of range, or a loop
		uint64_t d = desc_ + 16 * uint64_t{i};
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		memcpy(&addr, mem_.base + d, 8);
		memcpy(&len, mem_.base + d + 8, 4);
		memcpy(&flags, mem_.base + d + 12, 2);
		memcpy(&next, mem_.base + d + 14, 2);
		if ((flags & kDescIndirect) || !InRam(addr, len))
			return false;
		bool w = flags & kDescWrite;
		segs.push_back({addr, len, w});
		(w ? wr : rd) += len;
		if (!(flags & kDescNext))
			break;
		i = next;
	}
	const Seg &last = segs.back();
	if (!last.write || !last.len)
		return false;	// nowhere to put the status
	wr--;	// the status byte
	uint8_t st = Request(segs, rd, wr, written);
	if (!err_.ok())
		return true;
	mem_.base[last.addr + last.len - 1] = st;
	Dirty(last.addr + last.len - 1, 1);
	*written += 1;
	return true;
}

uint8_t VirtioBlk::Request(const std::vector<Seg> &segs, uint64_t rd, uint64_t wr,
			   uint32_t *written)
{
	*written = 0;
	bool seen_write = false;
	for (const Seg &s : segs) {
		if (!s.write && seen_write)
			return kStatusIoErr;	// device-readable after device-writable
		seen_write |= s.write;
	}
	if (rd < 16)
		return kStatusIoErr;
	uint8_t hdr[16];
	Gather(segs, 0, hdr, 16);
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
			Scatter(segs, off, buf.data(), n);
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
			Gather(segs, 16 + off, buf.data(), n);
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
		Scatter(segs, 0, id, n);
		*written = n;
		return kStatusOk;
	}
	default:
		return kStatusUnsupp;
	}
}

void VirtioBlk::Gather(const std::vector<Seg> &segs, uint64_t from, uint8_t *buf,
		       uint64_t n) const
{
	uint64_t pos = 0;
	for (const Seg &s : segs) {
		if (s.write || !n)
			break;
		if (from < pos + s.len) {
			uint64_t o = from - pos, k = std::min<uint64_t>(s.len - o, n);
			memcpy(buf, mem_.base + s.addr + o, k);
			buf += k, from += k, n -= k;
		}
		pos += s.len;
	}
}

void VirtioBlk::Scatter(const std::vector<Seg> &segs, uint64_t from, const uint8_t *buf,
			uint64_t n)
{
	uint64_t pos = 0;
	for (const Seg &s : segs) {
		if (!s.write)
			continue;
		if (!n)
			break;
		if (from < pos + s.len) {
			uint64_t o = from - pos, k = std::min<uint64_t>(s.len - o, n);
			memcpy(mem_.base + s.addr + o, buf, k);
			Dirty(s.addr + o, k);
			buf += k, from += k, n -= k;
		}
		pos += s.len;
	}
}

uint32_t VirtioBlk::state_id() const { return KVM_FT_DEV_VIRTIO_BLK; }

void VirtioBlk::Save(std::vector<uint8_t> *out) const
{
	StateWriter w(out);
	w.Put(disk_->sectors());
	w.Put(status_), w.Put(queue_ready_), w.Put(last_avail_);
	w.Put(dev_features_sel_), w.Put(drv_features_sel_), w.Put(queue_sel_);
	w.Put(queue_num_), w.Put(isr_);
	w.Put(drv_features_), w.Put(desc_), w.Put(avail_), w.Put(used_);
	const auto &ov = disk_->overlay();
	w.Put(static_cast<uint32_t>(ov.size()));
	for (const Disk::Write &x : ov) {
		w.Put(x.sector);
		w.Put(static_cast<uint32_t>(x.data.size()));
		w.PutBytes(x.data.data(), x.data.size());
	}
}

Status VirtioBlk::Load(const uint8_t *data, size_t len)
{
	StateReader r(data, len);
	uint64_t cap = r.Get<uint64_t>();
	uint8_t status = r.Get<uint8_t>(), ready = r.Get<uint8_t>();
	uint16_t last = r.Get<uint16_t>();
	uint32_t dsel = r.Get<uint32_t>(), fsel = r.Get<uint32_t>(), qsel = r.Get<uint32_t>();
	uint32_t num = r.Get<uint32_t>(), isr = r.Get<uint32_t>();
	uint64_t feat = r.Get<uint64_t>(), desc = r.Get<uint64_t>();
	uint64_t avail = r.Get<uint64_t>(), used = r.Get<uint64_t>();
	uint32_t nw = r.Get<uint32_t>();
	std::deque<Disk::Write> ov;
	for (uint32_t i = 0; i < nw; i++) {
		Disk::Write x{0, r.Get<uint64_t>(), {}};
		uint32_t n = r.Get<uint32_t>();
		if (n > len || n % kSectorSize || x.sector > cap || n / kSectorSize > cap - x.sector)
			return Status::Error(EINVAL, "virtio-blk state: bad pending write");
		x.data.resize(n);
		r.GetBytes(x.data.data(), n);
		ov.push_back(std::move(x));
	}
	if (!r.done() || ready > 1 || num > kQueueMax || (ready && !QueueOk(num, desc, avail, used)))
		return Status::Error(EINVAL, "virtio-blk state: malformed");
	if (cap != disk_->sectors())
		return Status::Error(EINVAL, fmt::format(
			"virtio-blk state: the disk had {} sectors, {} has {}", cap,
			disk_->path(), disk_->sectors()));
	status_ = status, queue_ready_ = ready, last_avail_ = last;
	dev_features_sel_ = dsel, drv_features_sel_ = fsel, queue_sel_ = qsel;
	queue_num_ = num, isr_ = isr;
	drv_features_ = feat, desc_ = desc, avail_ = avail, used_ = used;
	// A replayer keeps its own overlay: it holds every write it replayed,
	// a superset of the primary's pending ones (ftvmm.md "Disk writes").
	if (disk_->mode() == Disk::kReplay)
		return Status::Ok();
	disk_->SetOverlay(std::move(ov));
	return disk_->mode() == Disk::kDirect ? disk_->ApplyAll() : Status::Ok();
}

} // namespace kvmft::vmm
