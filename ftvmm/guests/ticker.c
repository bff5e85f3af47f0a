/* ticker.c - PIT-driven ticker whose output depends on where the ticks
 * land: each tick folds the interrupted RIP and the work counter into a
 * hash. Phases with frequent port I/O alternate with phases without any
 * exit, so ticks arrive both at I/O exits and by kicks (checkpoints). */
#include "rt.h"

#define TICKS 40

static volatile u64 work;
static volatile u64 hash = 14695981039346656037UL;

static void tick(u64 rip)
{
	hash = (hash ^ work ^ rip) * 1099511628211UL;
}

void guest_main(void)
{
	rt_pic_init(1);
	rt_pit_start(200, tick);
	rt_sti();
	u64 shown = 0;
	while (rt_ticks < TICKS) {
		work++;
		int quiet = (rt_ticks / 5) & 1;	/* 5 ticks with I/O, 5 without */
		if (!quiet && (work & 0x3ff) == 0)
			outb(0x80, (u8)work);
		if (rt_ticks != shown && rt_ticks % 5 == 0) {
			shown = rt_ticks;
			rt_puts("tick ");
			rt_put_dec(shown);
			rt_putc(' ');
			rt_put_hex(hash);
			rt_putc('\n');
		}
	}
	rt_cli();
	rt_puts("ticker done ");
	rt_put_hex(hash);
	rt_putc(' ');
	rt_put_hex(work);
	rt_putc('\n');
	rt_exit(0);
}
