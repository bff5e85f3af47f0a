// devices_test.cc - each device's registers, with a settable clock.
#include <catch2/catch.hpp>
#include "base/require_ok.h"
#include <string>
#include <unistd.h>

#include "hw/exit_port.h"
#include "hw/pic.h"
#include "hw/pit.h"
#include "hw/rtc.h"
#include "hw/uart.h"
#include "machine/machine.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace {
uint8_t In(BusDevice &d, uint64_t off)
{
	uint8_t v = 0;
	d.Read(off, &v, 1);
	return v;
}
void Out(BusDevice &d, uint64_t off, uint8_t v) { d.Write(off, &v, 1); }

void InitPic(Pic &p)
{
	Out(*p.master(), 0, 0x11), Out(*p.master(), 1, 0x20);
	Out(*p.master(), 1, 0x04), Out(*p.master(), 1, 0x01);
	Out(*p.slave(), 0, 0x11), Out(*p.slave(), 1, 0x28);
	Out(*p.slave(), 1, 0x02), Out(*p.slave(), 1, 0x01);
}
} // namespace

TEST_CASE("PIC: reset state masks everything, ICWs remap, EOI unblocks")
{
	Pic p;
	p.Raise(0);
	CHECK_FALSE(p.Pending());		// IMR 0xff after reset
	CHECK(In(*p.master(), 1) == 0xff);
	InitPic(p);
	CHECK(In(*p.master(), 1) == 0x00);	// ICW1 clears IMR
	Out(*p.master(), 1, 0xfe);		// only IRQ0
	p.Raise(1);
	CHECK_FALSE(p.Pending());
	p.Raise(0);
	REQUIRE(p.Pending());
	CHECK(p.Ack() == 0x20);
	CHECK_FALSE(p.Pending());
	Out(*p.master(), 0, 0x0b);		// OCW3: read ISR
	CHECK(In(*p.master(), 0) == 0x01);
	p.Raise(0);
	CHECK_FALSE(p.Pending());		// in service blocks equal priority
	Out(*p.master(), 0, 0x20);		// non-specific EOI
	CHECK(In(*p.master(), 0) == 0x00);
	CHECK(p.Pending());
	Out(*p.master(), 0, 0x0a);		// OCW3: read IRR
	CHECK(In(*p.master(), 0) == 0x03);	// IRQ1 requested, masked
}

TEST_CASE("PIC: slave interrupts cascade through IR2 and keep priority")
{
	Pic p;
	InitPic(p);
	p.Raise(12);
	p.Raise(3);
	REQUIRE(p.Pending());
	CHECK(p.Ack() == 0x28 + 4);		// IR2 (cascade) beats IR3
	CHECK(p.Ack() == -1);			// IR3 blocked by IR2 in service
	Out(*p.slave(), 0, 0x20);
	Out(*p.master(), 0, 0x62);		// specific EOI IR2
	CHECK(p.Ack() == 0x23);
	Pic q;
	InitPic(q);
	q.AckVector(0x2c);			// replay marks what the primary acked
	Out(*q.slave(), 0, 0x0b);
	CHECK(In(*q.slave(), 0) == 0x10);
}

TEST_CASE("PIT: counts down, latches and raises IRQ0 per period")
{
	uint64_t now = 1000000000;
	Pit pit([&] { return now; });
	CHECK(pit.NextIrq() == UINT64_MAX);
	Out(pit, 3, 0x34);			// ch0 lo/hi mode 2
	Out(pit, 0, 1193 & 0xff);
	CHECK(pit.NextIrq() == UINT64_MAX);	// not armed before the MSB
	Out(pit, 0, 1193 >> 8);
	uint64_t first = pit.NextIrq();
	CHECK(first == now + 999848);		// 1193 ticks of 838.1 ns
	now += 500000;				// half a period: ~597 ticks
	Out(pit, 3, 0x00);			// latch
	uint16_t c = In(pit, 0) | In(pit, 0) << 8;
	CHECK(c == 1193 - 596);
	CHECK_FALSE(pit.PollIrq(now));
	now = first + 3 * 1000000;		// three more periods passed
	CHECK(pit.PollIrq(now));		// coalesced into one edge
	CHECK_FALSE(pit.PollIrq(now));
	CHECK(pit.NextIrq() > now);
	Out(pit, 3, 0x30);			// mode 0: one shot
	Out(pit, 0, 0x10), Out(pit, 0, 0x00);
	now += 1000000;
	CHECK(pit.PollIrq(now));
	CHECK(pit.NextIrq() == UINT64_MAX);
}

TEST_CASE("PIT: state survives save and load with elapsed time")
{
	uint64_t now = 5000;
	Pit a([&] { return now; });
	Out(a, 3, 0x34), Out(a, 0, 0x00), Out(a, 0, 0x10);
	now += 12345;
	std::vector<uint8_t> st;
	a.Save(&st);
	uint64_t now2 = 99999999;
	Pit b([&] { return now2; });
	REQUIRE_OK(b.Load(st.data(), st.size()));
	CHECK(b.NextIrq() - now2 == a.NextIrq() - now);
	CHECK_FALSE(b.Load(st.data(), st.size() - 1).ok());
	st[0] = 9;				// mode 9
	CHECK_FALSE(b.Load(st.data(), st.size()).ok());
}

TEST_CASE("UART: THR output, DLAB divisor, LSR always ready")
{
	std::string out;
	Uart u([&](uint8_t c) { out.push_back(static_cast<char>(c)); });
	Out(u, 0, 'h');
	Out(u, 3, 0x80);			// DLAB
	Out(u, 0, 0x01), Out(u, 1, 0x02);	// divisor, not output
	CHECK(In(u, 0) == 0x01);
	CHECK(In(u, 1) == 0x02);
	Out(u, 3, 0x03);
	Out(u, 0, 'i');
	CHECK(out == "hi");
	CHECK(In(u, 5) == 0x60);
	CHECK(In(u, 2) == 0x01);		// no interrupt pending
	Out(u, 7, 0x42);
	CHECK(In(u, 7) == 0x42);
	std::vector<uint8_t> st;
	u.Save(&st);
	Uart v([](uint8_t) {});
	REQUIRE_OK(v.Load(st.data(), st.size()));
	CHECK(In(v, 7) == 0x42);
	CHECK(In(v, 3) == 0x03);
}

TEST_CASE("RTC: BCD, binary and 12-hour readings of the wall clock")
{
	Rtc r([] { return time_t{1700000000}; });	// 2023-11-14 22:13:20 UTC
	auto reg = [&](uint8_t i) {
		Out(r, 0, i | 0x80);			// NMI mask bit ignored
		return In(r, 1);
	};
	CHECK(reg(0x00) == 0x20);
	CHECK(reg(0x02) == 0x13);
	CHECK(reg(0x04) == 0x22);
	CHECK(reg(0x07) == 0x14);
	CHECK(reg(0x08) == 0x11);
	CHECK(reg(0x09) == 0x23);
	CHECK(reg(0x32) == 0x20);
	CHECK(reg(0x06) == 3);				// Tuesday
	CHECK(reg(0x0d) == 0x80);
	Out(r, 0, 0x0b), Out(r, 1, 0x06);		// binary 24 h
	CHECK(reg(0x04) == 22);
	CHECK(reg(0x00) == 20);
	Out(r, 0, 0x0b), Out(r, 1, 0x04);		// binary 12 h
	CHECK(reg(0x04) == (10 | 0x80));
	Out(r, 0, 0x00), Out(r, 1, 0x55);		// time is read-only
	CHECK(reg(0x00) == 20);
	Out(r, 0, 0x40), Out(r, 1, 0xa5);
	CHECK(reg(0x40) == 0xa5);
}

TEST_CASE("exit port: status is (value << 1) | 1")
{
	ExitPort e;
	CHECK_FALSE(e.done());
	Out(e, 0, 0);
	CHECK(e.done());
	CHECK(e.status() == 1);
	ExitPort f;
	Out(f, 0, 0x21);
	CHECK(f.status() == 0x43);
	ExitPort g;
	Out(g, 0, 0xff);
	CHECK(g.status() == 0xff);
}

// SMP epochs: bytes put with the pending tag get their epoch's tag at its
// end, and only an ACK covering that tag releases them, in order.
TEST_CASE("console: pending bytes are retagged at their epoch's end", "[console]")
{
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	{
		Console c(fds[1]);
		c.set_hold(true);
		c.set_tag(UINT64_MAX);
		c.Put('a');
		c.Put('b');
		c.Retag(UINT64_MAX, 10); // epoch 0 ends at log position 10
		c.Put('c');		 // epoch 1
		c.Release(9);
		CHECK(c.held() == 3);
		c.Release(UINT64_MAX - 1); // a pending byte is never covered
		CHECK(c.held() == 1);
		c.Retag(UINT64_MAX, 20);
		c.Release(20);
		CHECK(c.held() == 0);
		CHECK(c.produced() == 3);
		CHECK(c.stats().released == 3);
	}
	char buf[8] = {};
	CHECK(read(fds[0], buf, sizeof(buf)) == 3);
	CHECK(std::string(buf) == "abc");
	close(fds[0]);
	close(fds[1]);
}
