// blk_fixture.h - what the virtio-blk end-to-end tests share: the blank
// disk every run starts from, temporary disk files, and blkrmw runs.
#pragma once

#include <catch2/catch.hpp>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/require_ok.h"
#include "guest_run.h"

namespace kvmft::vmm::test {
// The disk every run starts from: 128 sectors, none with a valid checksum.
inline std::vector<uint8_t> Blank()
{
	std::vector<uint8_t> d(64 << 10);
	for (size_t i = 0; i < d.size(); i++)
		d[i] = static_cast<uint8_t>(i * 7 / 512);
	return d;
}

struct DiskFile {
	std::string path;
	explicit DiskFile(const std::string &tag, const std::vector<uint8_t> &bytes = Blank())
		: path(TempPath(tag + ".img"))
	{
		WriteFile(path, bytes);
	}
	~DiskFile() { unlink(path.c_str()); }
	std::vector<uint8_t> Bytes() const { return ReadFile(path); }
};

inline ModeConfig Jittered(uint64_t seed)
{
	ModeConfig c;
	c.jitter_ns = 2000000;
	c.seed = seed;
	c.slice_ns = 3000000;
	return c;
}

inline std::string LastLine(const std::string &s)
{
	auto e = s.find_last_not_of('\n');
	auto b = s.rfind('\n', e);
	return s.substr(b == std::string::npos ? 0 : b + 1, e - (b == std::string::npos ? 0 : b + 1) + 1);
}

// Bytes of disk data read through the guest's requests (see blkrmw.c):
// all 8 sectors once, then per round 8 x (read + read back) and all 8.
constexpr uint64_t kBlkrmwReadBytes = 4096 + 24 * (8 * 1024 + 4096);

// blkrmw run plainly on a disk of its own: what a failover must end as.
struct PlainBlk {
	DiskFile disk;
	GuestRun run;
	explicit PlainBlk(const std::string &tag)
		: disk(tag), run(RecordGuest("blkrmw", "", {}, disk.path))
	{
		INFO(run.s.msg());
		REQUIRE_OK(run.s);
		REQUIRE(run.status == 1);
	}
};

struct Recorded {
	DiskFile disk;
	std::string log;
	GuestRun rec;
	explicit Recorded(uint64_t seed)
		: disk("rec" + std::to_string(seed)),
		  log(TempPath("blk" + std::to_string(seed) + ".log"))
	{
		RequireKvm();
		rec = RecordGuest("blkrmw", log, Jittered(seed), disk.path);
		INFO(rec.s.msg() << "\n" << rec.out);
		REQUIRE_OK(rec.s);
		REQUIRE(rec.status == 1);
		REQUIRE(rec.out.find("blkrmw done 628 requests") != std::string::npos);
	}
	~Recorded() { unlink(log.c_str()); }
};
} // namespace kvmft::vmm::test
