/* clock.c - a VM that runs for a few seconds of guest time: 100 Hz PIT,
 * one console line every 10 ticks (0.1 s), 400 ticks in all. Each tick
 * folds the interrupted RIP and a work counter into a hash, so the lines
 * depend on where ticks land (a replay must place them exactly). Used by
 * the lock and failover tests and the demo, which need a VM that is
 * still running when its host is stopped or killed. */
#include "rt.h"

#define TICKS 400

static volatile u64 work;
static volatile u64 hash = 14695981039346656037UL;

static void tick(u64 rip)
{
	hash = (hash ^ work ^ rip) * 1099511628211UL;
}

void guest_main(void)
{
	rt_pic_init(1);
	rt_pit_start(100, tick);
	rt_sti();
	u64 shown = 0;
	while (rt_ticks < TICKS) {
		work++;
		if ((work & 0xfff) == 0)
			outb(0x80, (u8)work);
		if (rt_ticks != shown && rt_ticks % 10 == 0) {
			shown = rt_ticks;
			rt_puts("clock ");
			rt_put_dec(shown / 10);
			rt_putc(' ');
			rt_put_hex(hash);
			rt_putc('\n');
		}
	}
	rt_cli();
	rt_puts("clock done ");
	rt_put_hex(hash);
	rt_putc('\n');
	rt_exit(0);
}
