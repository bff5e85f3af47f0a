/* rtc.c - reads the CMOS clock (BCD, binary, 12-hour) and the PIT
 * counter: non-deterministic inputs that a replay must reproduce. */
#include "rt.h"

static void put2(u8 v)
{
	rt_putc('0' + v / 10);
	rt_putc('0' + v % 10);
}

static u8 from_bcd(u8 v) { return (v >> 4) * 10 + (v & 15); }

static void show(const char *tag, int bcd)
{
	u8 s = rt_cmos_read(0), m = rt_cmos_read(2), h = rt_cmos_read(4);
	u8 d = rt_cmos_read(7), mo = rt_cmos_read(8), y = rt_cmos_read(9);
	u8 c = rt_cmos_read(0x32);
	if (bcd) {
		s = from_bcd(s), m = from_bcd(m), h = from_bcd(h & 0x7f) | (h & 0x80);
		d = from_bcd(d), mo = from_bcd(mo), y = from_bcd(y), c = from_bcd(c);
	}
	rt_puts(tag);
	put2(c), put2(y), rt_putc('-'), put2(mo), rt_putc('-'), put2(d);
	rt_putc(' ');
	put2(h & 0x7f), rt_putc(':'), put2(m), rt_putc(':'), put2(s);
	if (h & 0x80)
		rt_puts(" pm");
	rt_putc('\n');
}

void guest_main(void)
{
	show("bcd ", 1);
	rt_cmos_write(0x0b, 0x06);	/* binary, 24 h */
	show("bin ", 0);
	rt_cmos_write(0x0b, 0x04);	/* binary, 12 h */
	show("12h ", 0);
	rt_cmos_write(0x40, 0x5a);
	rt_puts("cmos ram ");
	rt_put_hex(rt_cmos_read(0x40));
	rt_putc('\n');
	rt_pit_start(100, 0);
	for (int i = 0; i < 4; i++) {
		outb(0x43, 0x00);	/* latch channel 0 */
		u16 lo = inb(0x40), hi = inb(0x40);
		rt_puts("pit ");
		rt_put_dec(hi << 8 | lo);
		rt_putc('\n');
	}
	rt_exit(0);
}
