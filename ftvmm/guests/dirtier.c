/* dirtier.c - dirties memory at a set rate: between two 100 Hz ticks it
 * writes PAGES_PER_TICK distinct pages of a 16 MiB area from ring 3,
 * without any exit, so a recorder must checkpoint those pages. */
#include "rt.h"

#define AREA_PAGES 4096
#define PAGES_PER_TICK 256
#define TICKS 20

static u64 area[AREA_PAGES * 512] __attribute__((aligned(4096)));

void guest_main(void)
{
	rt_pic_init(1);
	rt_pit_start(100, 0);
	rt_sti();
	u64 page = 0, seen = 0, done = 0, v = 1;
	while (rt_ticks < TICKS) {
		if (rt_ticks != seen) {
			seen = rt_ticks;
			done = 0;
		}
		if (done < PAGES_PER_TICK) {
			area[page * 512 + (v & 511)] += v;
			page = (page + 1) % AREA_PAGES;
			done++;
		}
		v++;
	}
	rt_cli();
	u64 h = 14695981039346656037UL;
	for (u64 i = 0; i < AREA_PAGES * 512; i++)
		h = (h ^ area[i]) * 1099511628211UL;
	rt_puts("dirtier done ");
	rt_put_hex(h);
	rt_putc('\n');
	rt_exit(0);
}
