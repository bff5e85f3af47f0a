/* compute.c - compute with periodic I/O: rounds of a hash over 8 MiB in
 * ring 3, a port write every 64 Ki steps, a line per round. Deterministic:
 * its output is the same on every run. */
#include "rt.h"

#define WORDS (1UL << 20)
#define ROUNDS 16

static u64 buf[WORDS];

void guest_main(void)
{
	u64 x = 88172645463325252UL, h = 14695981039346656037UL;
	for (int r = 0; r < ROUNDS; r++) {
		for (u64 i = 0; i < WORDS; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] ^= x;
			h = (h ^ buf[i]) * 1099511628211UL;
			if ((i & 0xffff) == 0)
				outb(0x80, (u8)(i >> 16));
		}
		rt_puts("round ");
		rt_put_dec(r);
		rt_putc(' ');
		rt_put_hex(h);
		rt_putc('\n');
	}
	rt_puts("compute done ");
	rt_put_hex(h);
	rt_putc('\n');
	rt_exit(0);
}
