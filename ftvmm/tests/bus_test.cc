// bus_test.cc - range rules of the bus and dispatch of made-up exits.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <cstring>
#include <vector>

#include "hw/bus.h"
#include "hw/exits.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace {
// Remembers accesses; reads return offset + i.
struct Dummy : BusDevice {
	explicit Dummy(const char *n = "dummy") : n_(n) {}
	void Read(uint64_t off, uint8_t *d, uint32_t len) override
	{
		reads.push_back(off);
		for (uint32_t i = 0; i < len; i++)
			d[i] = static_cast<uint8_t>(off + i);
	}
	void Write(uint64_t off, const uint8_t *d, uint32_t len) override
	{
		writes.push_back(off);
		data.insert(data.end(), d, d + len);
	}
	const char *name() const override { return n_; }
	const char *n_;
	std::vector<uint64_t> reads, writes;
	std::vector<uint8_t> data;
};

// A kvm_run with room for I/O data after it, as KVM maps it.
struct FakeRun {
	alignas(8) uint8_t buf[4096] = {};
	kvm_run *run() { return reinterpret_cast<kvm_run *>(buf); }
	void Io(uint8_t dir, uint16_t port, uint8_t size, uint32_t count)
	{
		run()->exit_reason = KVM_EXIT_IO;
		run()->io.direction = dir;
		run()->io.port = port;
		run()->io.size = size;
		run()->io.count = count;
		run()->io.data_offset = 2048;
	}
};
} // namespace

TEST_CASE("bus rejects zero-length, overflowing and overlapping ranges")
{
	Bus bus("test");
	Dummy a("a"), b("b");
	REQUIRE_OK(bus.Insert(&a, 0x100, 0x10));
	CHECK(bus.Insert(&b, 0x200, 0).err() == EINVAL);
	CHECK(bus.Insert(&b, UINT64_MAX - 3, 8).err() == EINVAL);
	CHECK(bus.Insert(&b, 0x10f, 1).err() == EEXIST);	  // last byte of a
	CHECK(bus.Insert(&b, 0xf0, 0x11).err() == EEXIST);	  // runs into a
	CHECK(bus.Insert(&b, 0x80, 0x200).err() == EEXIST);	  // covers a
	CHECK(bus.Insert(&b, 0x104, 2).err() == EEXIST);	  // inside a
	Status s = bus.Insert(&b, 0x10f, 1);
	CHECK(s.msg().find("overlaps a") != std::string::npos);
	CHECK(bus.Insert(&b, 0x110, 0x10).ok());		  // adjacent above
	CHECK(bus.Insert(&b, UINT64_MAX - 7, 7).ok());		  // near the top
}

TEST_CASE("bus dispatches by offset and refuses accesses past a range")
{
	Bus bus("test");
	Dummy a;
	REQUIRE_OK(bus.Insert(&a, 0x3f8, 8));
	uint8_t v[4] = {};
	REQUIRE(bus.Read(0x3fd, v, 1));
	CHECK(a.reads == std::vector<uint64_t>{5});
	CHECK(v[0] == 5);
	CHECK_FALSE(bus.Read(0x3fe, v, 4));	// crosses the end
	CHECK_FALSE(bus.Read(0x3f7, v, 1));	// below
	CHECK_FALSE(bus.Read(0x400, v, 1));	// above
	CHECK_FALSE(bus.Read(0x3f8, v, 0));
	REQUIRE(bus.Write(0x3f8, v, 1));
	CHECK(a.writes == std::vector<uint64_t>{0});
}

TEST_CASE("made-up port I/O exits reach the device")
{
	Bus bus("pio");
	Dummy d;
	REQUIRE_OK(bus.Insert(&d, 0x70, 2));
	FakeRun f;

	f.Io(KVM_EXIT_IO_IN, 0x71, 1, 1);
	CHECK(DoPortIo(f.run(), &bus));
	CHECK(IoData(f.run())[0] == 1);

	f.Io(KVM_EXIT_IO_OUT, 0x70, 1, 3);	// rep outsb
	memcpy(IoData(f.run()), "abc", 3);
	CHECK(DoPortIo(f.run(), &bus));
	CHECK(d.writes == std::vector<uint64_t>{0, 0, 0});
	CHECK(std::string(d.data.begin(), d.data.end()) == "abc");

	f.Io(KVM_EXIT_IO_IN, 0x80, 2, 1);	// nobody owns port 0x80
	IoData(f.run())[0] = 0;
	CHECK_FALSE(DoPortIo(f.run(), &bus));
	CHECK(IoData(f.run())[0] == 0xff);
	CHECK(IoData(f.run())[1] == 0xff);
}

TEST_CASE("made-up MMIO exits reach the device")
{
	Bus bus("mmio");
	Dummy d;
	REQUIRE_OK(bus.Insert(&d, 0xd0000000, 0x200));
	FakeRun f;
	kvm_run *r = f.run();
	r->exit_reason = KVM_EXIT_MMIO;
	r->mmio.phys_addr = 0xd0000010;
	r->mmio.len = 4;
	r->mmio.is_write = 0;
	CHECK(DoMmio(r, &bus));
	CHECK(r->mmio.data[0] == 0x10);
	CHECK(r->mmio.data[3] == 0x13);
	r->mmio.is_write = 1;
	r->mmio.phys_addr = 0xd0000100;
	CHECK(DoMmio(r, &bus));
	CHECK(d.writes.back() == 0x100);
	r->mmio.is_write = 0;
	r->mmio.phys_addr = 0xc0000000;
	CHECK_FALSE(DoMmio(r, &bus));
	CHECK(r->mmio.data[0] == 0xff);
}
