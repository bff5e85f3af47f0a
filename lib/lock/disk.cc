// disk.cc - O_DIRECT file disk and the CLOCK_BOOTTIME clock.
#include "lock/disk.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

#include "lock/format.h"

namespace kvmft::lock {

namespace {

// O_DIRECT wants buffers aligned to the logical block size; 4096 covers
// every device we meet.
constexpr size_t kAlign = 4096;

struct AlignedBuf {
	void *p = nullptr;
	explicit AlignedBuf(size_t n)
	{
		if (posix_memalign(&p, kAlign, n))
			p = nullptr;
	}
	~AlignedBuf() { std::free(p); }
	AlignedBuf(const AlignedBuf &) = delete;
	AlignedBuf &operator=(const AlignedBuf &) = delete;
};

Status SizeOf(int fd, const std::string &path, uint64_t *bytes)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return Status::Errno("stat " + path);
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, bytes) < 0)
			return Status::Errno("BLKGETSIZE64 " + path);
		return Status::Ok();
	}
	if (!S_ISREG(st.st_mode))
		return Status::Error(EINVAL, path + ": not a regular file or block device");
	*bytes = st.st_size;
	return Status::Ok();
}

} // namespace

Status FileDisk::Open(const std::string &path, uint64_t create_sectors,
		      std::unique_ptr<FileDisk> *out)
{
	int flags = O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC;
	if (create_sectors)
		flags |= O_CREAT;
	UniqueFd fd(::open(path.c_str(), flags, 0660));
	if (!fd.valid()) {
		if (errno == EINVAL)
			return Status::Error(EINVAL, "open " + path +
							     ": O_DIRECT not supported by this filesystem");
		return Status::Errno("open " + path);
	}
	uint64_t bytes = 0;
	Status st = SizeOf(fd.get(), path, &bytes);
	if (!st.ok())
		return st;
	struct stat sb;
	if (create_sectors && fstat(fd.get(), &sb) == 0 && S_ISREG(sb.st_mode) &&
	    bytes < create_sectors * kSectorSize) {
		bytes = create_sectors * kSectorSize;
		if (ftruncate(fd.get(), static_cast<off_t>(bytes)) < 0)
			return Status::Errno("extend " + path);
	}
	out->reset(new FileDisk(path, std::move(fd), bytes / kSectorSize));
	return Status::Ok();
}

Status FileDisk::Io(bool write, uint64_t lba, uint32_t count, void *buf)
{
	if (count == 0 || lba + count > sectors_ || lba + count < lba)
		return Status::Error(ERANGE, path_ + ": sectors " + std::to_string(lba) +
						     "+" + std::to_string(count) +
						     " beyond end (" +
						     std::to_string(sectors_) + ")");
	size_t n = size_t(count) * kSectorSize;
	AlignedBuf ab(n);
	if (!ab.p)
		return Status::Error(ENOMEM, "aligned buffer");
	if (write)
		std::memcpy(ab.p, buf, n);
	off_t off = static_cast<off_t>(lba * kSectorSize);
	ssize_t r = write ? pwrite(fd_.get(), ab.p, n, off) : pread(fd_.get(), ab.p, n, off);
	std::string what = std::string(write ? "write " : "read ") + path_ +
			   " sector " + std::to_string(lba);
	if (r < 0)
		return Status::Errno(what);
	if (size_t(r) != n)
		return Status::Error(EIO, what + ": short transfer");
	if (!write)
		std::memcpy(buf, ab.p, n);
	return Status::Ok();
}

Status FileDisk::Read(uint64_t lba, uint32_t count, void *buf)
{
	return Io(false, lba, count, buf);
}

Status FileDisk::Write(uint64_t lba, uint32_t count, const void *buf)
{
	return Io(true, lba, count, const_cast<void *>(buf));
}

int64_t SystemClock::Now()
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void SystemClock::SleepUntil(int64_t t)
{
	struct timespec ts = {static_cast<time_t>(t / 1000000000),
			      static_cast<long>(t % 1000000000)};
	while (clock_nanosleep(CLOCK_BOOTTIME, TIMER_ABSTIME, &ts, nullptr) == EINTR)
		;
}

} // namespace kvmft::lock
