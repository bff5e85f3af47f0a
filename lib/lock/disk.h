// disk.h - what the lock algorithm needs from storage and time.
//
// Disk: whole-sector reads and writes, nothing else (shared virtual disks
// offer no compare-and-write and no reservations). A write that returned
// OK is on the medium: any read that starts later, from any host, sees it.
// A failed write may or may not have reached the medium. FileDisk is the
// real one (O_DIRECT, so the page cache can never serve stale data); tests
// use a fake (fake_disk.h) that delays, reorders, loses and fails I/O.
//
// Clock: a monotonic clock local to one host. Lease timing only ever
// compares two readings of the same host's clock; clocks of different
// hosts are never compared. SystemClock is CLOCK_BOOTTIME: it is not moved
// by settimeofday/NTP steps and keeps counting while the host is
// suspended, so a holder that slept past its lease sees that it did.
//
// Thread safety: a Disk may be used by several threads at once (FileDisk
// uses pread/pwrite, no shared offset); Clock likewise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "base/unique_fd.h"

namespace kvmft::lock {

class Disk {
public:
	virtual ~Disk() = default;
	// Read/write `count` sectors starting at sector `lba`. buf holds
	// count * kSectorSize bytes; it need not be aligned.
	virtual Status Read(uint64_t lba, uint32_t count, void *buf) = 0;
	virtual Status Write(uint64_t lba, uint32_t count, const void *buf) = 0;
	virtual uint64_t Sectors() const = 0; // size of the device or file
	virtual std::string Name() const = 0; // for messages
};

// A regular file or block device opened with O_DIRECT | O_DSYNC.
class FileDisk : public Disk {
public:
	// Open path. With create_sectors > 0 a regular file is created or
	// extended to at least that many sectors (for `lock init`).
	static Status Open(const std::string &path, uint64_t create_sectors,
			   std::unique_ptr<FileDisk> *out);
	Status Read(uint64_t lba, uint32_t count, void *buf) override;
	Status Write(uint64_t lba, uint32_t count, const void *buf) override;
	uint64_t Sectors() const override { return sectors_; }
	std::string Name() const override { return path_; }

private:
	FileDisk(std::string path, UniqueFd fd, uint64_t sectors)
		: path_(std::move(path)), fd_(std::move(fd)), sectors_(sectors) {}
	Status Io(bool write, uint64_t lba, uint32_t count, void *buf);
	std::string path_;
	UniqueFd fd_;
	uint64_t sectors_;
};

class Clock {
public:
	virtual ~Clock() = default;
	virtual int64_t Now() = 0; // nanoseconds, monotonic, this host only
	// Sleep until Now() >= t (may return early on a fake clock's jump).
	virtual void SleepUntil(int64_t t) = 0;
};

class SystemClock : public Clock {
public:
	int64_t Now() override;
	void SleepUntil(int64_t t) override;
};

inline constexpr int64_t kMs = 1000000; // ns per ms

} // namespace kvmft::lock
