// disk.cc - virtio-blk's file and write overlay (disk.h).
#include "virtio/disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

namespace kvmft::vmm {

Status Disk::Open(const std::string &path, std::unique_ptr<Disk> *out)
{
	auto d = std::unique_ptr<Disk>(new Disk());
	d->path_ = path;
	d->fd_.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
	if (!d->fd_.valid())
		return Status::Errno("open disk " + path);
	struct stat st;
	if (fstat(d->fd_.get(), &st) < 0)
		return Status::Errno("stat disk " + path);
	if (!S_ISREG(st.st_mode))
		return Status::Error(EINVAL, "disk " + path + ": not a regular file");
	if (st.st_size % kSectorSize || st.st_size == 0)
		return Status::Error(EINVAL, fmt::format(
			"disk {}: size {} is not a non-zero multiple of 512", path, st.st_size));
	d->sectors_ = st.st_size / kSectorSize;
	*out = std::move(d);
	return Status::Ok();
}

Status Disk::Read(uint64_t sector, uint8_t *dst, uint32_t bytes) const
{
	uint64_t off = sector * kSectorSize;
	for (uint32_t done = 0; done < bytes;) {
		ssize_t r = pread(fd_.get(), dst + done, bytes - done, off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return Status::Errno(fmt::format("read disk {} at {:#x}", path_, off + done));
		if (r == 0)
			return Status::Error(EIO, fmt::format("disk {} shrank below {:#x}", path_,
							      off + done));
		done += r;
	}
	uint64_t end = off + bytes;
	for (const Write &w : overlay_) {
		uint64_t wo = w.sector * kSectorSize, we = wo + w.data.size();
		uint64_t lo = std::max(off, wo), hi = std::min(end, we);
		if (lo < hi)
			memcpy(dst + (lo - off), w.data.data() + (lo - wo), hi - lo);
	}
	return Status::Ok();
}

Status Disk::PutFile(uint64_t sector, const uint8_t *src, size_t bytes)
{
	uint64_t off = sector * kSectorSize;
	for (size_t done = 0; done < bytes;) {
		ssize_t r = pwrite(fd_.get(), src + done, bytes - done, off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return Status::Errno(fmt::format("write disk {} at {:#x}", path_, off + done));
		done += r;
	}
	return Status::Ok();
}

Status Disk::WriteAt(uint64_t sector, const uint8_t *src, uint32_t bytes)
{
	const uint64_t seq = next_seq_++;
	if (mode_ == kDirect || mode_ == kReplayPrivate)
		return PutFile(sector, src, bytes);
	overlay_.push_back({tag_, sector, std::vector<uint8_t>(src, src + bytes),
			    mode_ == kHold ? MonotonicNs() : 0, pos_, seq});
	if (mode_ == kHold)
		Publish();
	else
		rs_.peak = std::max<uint64_t>(rs_.peak, overlay_.size());
	return Status::Ok();
}

Status Disk::Flush()
{
	if (mode_ != kDirect && mode_ != kReplayPrivate)
		return Status::Ok();
	if (fdatasync(fd_.get()) < 0)
		return Status::Errno("sync disk " + path_);
	return Status::Ok();
}

Status Disk::Release(uint64_t ack)
{
	if (mode_ != kHold || overlay_.empty() || overlay_.front().tag > ack)
		return Status::Ok();
	Status s = WriteOut(ack, MonotonicNs());
	Publish();
	return s;
}

void Disk::Publish()
{
	if (publish_)
		publish_({overlay_.size(), released_, hold_ns_total_});
}

Status Disk::ApplyAll()
{
	if (mode_ == kReplay || mode_ == kEpochs)
		rs_.applied += overlay_.size();
	return WriteOut(UINT64_MAX, 0);
}

Status Disk::ApplyEpoch(std::deque<Write> w, uint64_t next_seq)
{
	if (mode_ != kEpochsPrivate) {
		SetOverlay(std::move(w), next_seq);
		return Status::Ok();
	}
	// Every write is pending in the epoch that issued it: the oldest
	// pending one may be older than the last epoch's newest, never newer.
	const uint64_t first = w.empty() ? next_seq : w.front().seq;
	if (epoch_seen_ && first > next_seq_)
		return Status::Error(EINVAL, fmt::format(
			"disk writes {} to {} are in no epoch: the log lost them", next_seq_,
			first - 1));
	if (next_seq < next_seq_)
		return Status::Error(EINVAL, fmt::format(
			"an epoch counts {} disk writes, an earlier one {}", next_seq, next_seq_));
	bool wrote = false;
	for (const Write &x : w) {
		if (epoch_seen_ && x.seq < next_seq_)
			continue; // written with an earlier epoch
		Status s = PutFile(x.sector, x.data.data(), x.data.size());
		if (!s.ok())
			return s;
		rs_.copied++;
		wrote = true;
	}
	if (wrote && fdatasync(fd_.get()) < 0)
		return Status::Errno("sync disk " + path_);
	epoch_seen_ = true;
	next_seq_ = next_seq;
	return Status::Ok();
}

void Disk::Retag(uint64_t from, uint64_t to)
{
	for (auto it = overlay_.rbegin(); it != overlay_.rend() && it->tag == from; ++it)
		it->tag = to;
}

void Disk::Forget(uint64_t pos)
{
	if (mode_ != kReplay)
		return;
	// Issue order is position order: the writes to drop are a prefix.
	while (!overlay_.empty() && overlay_.front().pos <= pos) {
		overlay_.pop_front();
		rs_.dropped++;
	}
}

// Held writes tagged <= upto go to the file, in order, then to the medium.
// now_ns != 0: a release under the output rule, counted as such.
Status Disk::WriteOut(uint64_t upto, uint64_t now_ns)
{
	if (overlay_.empty() || overlay_.front().tag > upto)
		return Status::Ok();
	uint64_t last = written_pos_;
	while (!overlay_.empty() && overlay_.front().tag <= upto) {
		const Write &w = overlay_.front();
		Status s = PutFile(w.sector, w.data.data(), w.data.size());
		if (!s.ok())
			return s;
		if (now_ns) {
			last = std::max(last, w.pos);
			const uint64_t ns = w.at_ns && now_ns > w.at_ns ? now_ns - w.at_ns : 0;
			released_++;
			hold_ns_total_ += ns;
			hist_.Add(ns);
		}
		overlay_.pop_front();
	}
	if (fdatasync(fd_.get()) < 0)
		return Status::Errno("sync disk " + path_);
	written_pos_ = last;
	return Status::Ok();
}

OutputStats Disk::stats() const
{
	OutputStats s;
	s.held = overlay_.size();
	s.released = released_;
	s.hold_ns_total = hold_ns_total_;
	s.hold_ns_p50 = hist_.Get(50);
	s.hold_ns_p99 = hist_.Get(99);
	s.hold_ns_max = hist_.max();
	return s;
}

uint64_t Disk::held_bytes() const
{
	uint64_t n = 0;
	for (const Write &w : overlay_)
		n += w.data.size();
	return n;
}

} // namespace kvmft::vmm
