// logfile_test.cc - log file framing: round trip, every corrupted byte
// and every truncation is found (never a crash, never a silent accept).
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>

#include "checkpoint/checkpoint.h"
#include "ftlog/file.h"

using namespace kvmft;
using namespace kvmft::vmm;

// The record layouts of uapi/linux/kvm_ft_vmm.h (Documentation/log-format.md).
static_assert(sizeof(kvm_ft_vmm_exit) == 56);
static_assert(sizeof(kvm_ft_vmm_data) == 48);
static_assert(sizeof(kvm_ft_vmm_irq) == 48);
static_assert(sizeof(kvm_ft_vmm_ckpt) == 56);
static_assert(sizeof(kvm_ft_vmm_page) == 48);
static_assert(sizeof(kvm_ft_vmm_cpu) == 72);
static_assert(sizeof(kvm_ft_vmm_dev) == 48);
static_assert(sizeof(kvm_ft_vmm_end) == 48);
static_assert(sizeof(kvm_ft_vmm_blk_read) == 56);
static_assert(sizeof(kvm_ft_vmm_start) == 72);
static_assert(offsetof(kvm_ft_vmm_start, disk_bytes) == 56);
static_assert(offsetof(kvm_ft_vmm_blk_read, sector) == 40);
static_assert(offsetof(kvm_ft_vmm_blk_read, bytes) == 48);
static_assert(KVM_FT_REC_VMM_GO_LIVE == 0x10a);
static_assert(KVM_FT_REC_VMM_BLK_READ == 0x10b);
static_assert(KVM_FT_DEV_RTC == 5);
static_assert(KVM_FT_DEV_VIRTIO_BLK == 6);
static_assert(sizeof(kvm_ft_vmm_file_hdr) == 64);
static_assert(sizeof(kvm_ft_vmm_epoch) == 80);
static_assert(offsetof(kvm_ft_vmm_epoch, mem_hash) == 64);
static_assert(KVM_FT_REC_VMM_EPOCH_BEGIN == 0x10d);
static_assert(KVM_FT_REC_VMM_EPOCH_END == 0x10e);

namespace {
std::string TempPath(const char *tag)
{
	return std::string("/tmp/ftvmm-logtest-") + tag + "-" + std::to_string(getpid());
}

std::vector<uint8_t> WriteSample(int nrec)
{
	std::string path = TempPath("sample");
	std::unique_ptr<LogWriter> w;
	auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, 1 << 24, 0x1234, 0);
	REQUIRE_OK(LogWriter::Create(path, hdr, &w));
	for (int i = 0; i < nrec; i++) {
		kvm_ft_rec_pio r;
		InitRec(&r.hdr, KVM_FT_REC_PIO, sizeof(r), i + 1);
		r.port = 0x71;
		r.size = 1;
		r.dir = KVM_FT_DIR_IN;
		r.count = 1;
		r.value = i * 7;
		REQUIRE_OK(w->Append(&r, sizeof(r)));
	}
	REQUIRE_OK(w->Flush());
	w.reset();
	std::ifstream f(path, std::ios::binary);
	std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), {});
	unlink(path.c_str());
	return b;
}

// Reads all records; returns how many, or -1 on error.
int ReadAll(std::vector<uint8_t> bytes, std::string *err)
{
	LogReader r;
	Status s = LogReader::FromBytes(std::move(bytes), "t", &r);
	int n = 0;
	while (s.ok()) {
		const kvm_ft_rec_hdr *h;
		s = r.Next(&h);
		if (s.ok() && !h)
			return n;
		n++;
	}
	*err = s.msg();
	return -1;
}
} // namespace

TEST_CASE("log records round-trip with sequence numbers")
{
	auto b = WriteSample(5);
	LogReader r;
	REQUIRE_OK(LogReader::FromBytes(b, "t", &r));
	CHECK(r.header().kind == KVM_FT_FILE_LOG);
	CHECK(r.header().image_hash == 0x1234);
	for (int i = 0; i < 5; i++) {
		const kvm_ft_rec_hdr *h, *p;
		REQUIRE_OK(r.Peek(&p));
		REQUIRE_OK(r.Next(&h));
		REQUIRE(h);
		CHECK(h == p);
		CHECK(h->seq == static_cast<uint64_t>(i));
		CHECK(h->pos == static_cast<uint64_t>(i + 1));
		CHECK(reinterpret_cast<const kvm_ft_rec_pio *>(h)->value == uint64_t(i) * 7);
	}
	const kvm_ft_rec_hdr *h;
	REQUIRE_OK(r.Next(&h));
	CHECK(h == nullptr);
}

TEST_CASE("every single corrupted byte is detected")
{
	auto good = WriteSample(4);
	std::string err;
	REQUIRE(ReadAll(good, &err) == 4);
	for (size_t i = 0; i < good.size(); i++) {
		auto bad = good;
		bad[i] ^= 0x20;
		INFO("byte " << i);
		CHECK(ReadAll(bad, &err) == -1);
	}
}

TEST_CASE("truncation inside a frame is an error naming the offset")
{
	auto good = WriteSample(3);
	size_t frame = sizeof(kvm_ft_vmm_frame) + sizeof(kvm_ft_rec_pio);
	size_t hdr = sizeof(kvm_ft_vmm_file_hdr);
	std::string err;
	for (size_t len = 0; len < good.size(); len++) {
		std::vector<uint8_t> t(good.begin(), good.begin() + len);
		int n = ReadAll(t, &err);
		INFO("length " << len);
		if (len >= hdr && (len - hdr) % frame == 0) {
			CHECK(n == static_cast<int>((len - hdr) / frame)); // clean prefix
		} else {
			CHECK(n == -1);
			if (len > hdr)
				CHECK(err.find("offset") != std::string::npos);
		}
	}
}

TEST_CASE("bad headers are refused with a reason")
{
	auto good = WriteSample(1);
	std::string err;
	auto b = good;
	b[0] = 'X';
	CHECK(ReadAll(b, &err) == -1);
	CHECK(err.find("magic") != std::string::npos);
	LogReader r;
	CHECK(LogReader::Open("/nonexistent/log", &r).err() == ENOENT);
}

TEST_CASE("a torn tail can be read as the end of the log (go-live)")
{
	auto good = WriteSample(3);
	std::vector<uint8_t> t(good.begin(), good.end() - 5);
	LogReader r;
	REQUIRE_OK(LogReader::FromBytes(t, "t", &r));
	r.set_allow_torn_tail(true);
	int n = 0;
	const kvm_ft_rec_hdr *h;
	while (r.Next(&h).ok() && h)
		n++;
	CHECK(n == 2);
	CHECK(r.torn());
	auto bad = good;
	bad[bad.size() - 3] ^= 1;		// corruption is never "torn"
	LogReader c;
	REQUIRE_OK(LogReader::FromBytes(bad, "t", &c));
	c.set_allow_torn_tail(true);
	Status s;
	while ((s = c.Next(&h)).ok() && h)
		;
	CHECK(s.err() == EINVAL);
	CHECK_FALSE(c.torn());
}
