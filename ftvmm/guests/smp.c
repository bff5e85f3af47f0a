/* smp.c - the SMP worker. Every vCPU works in ring 3 on its share of the
 * job of smp_job.h (blocks b with b % ncpus == cpu, ROUNDS rounds),
 * dirtying one page per block; a shared atomic counter counts the blocks
 * done and a spinlock protects the shared sum / XOR / count. vCPU 0
 * prints its progress, waits for all, prints per-vCPU results and the
 * final result (the same for any number of vCPUs) and exits with 0.
 * ROUNDS is a build parameter (smp.elf: 6000; smp_small.elf: 8). */
#include "rt.h"
#include "smp_job.h"

#ifndef ROUNDS
#define ROUNDS 6000
#endif

static unsigned long data[SMP_BLOCKS * SMP_BLOCK_WORDS] __attribute__((aligned(4096)));

struct shared {
	volatile u32 lock;
	u64 sum, xr, count;
};
static struct shared shared;
static volatile u64 blocks_done;	/* atomic */
static volatile u64 finished;		/* atomic: vCPUs done */
static volatile u64 cpu_hash[8], cpu_blocks[8];

static void lock(volatile u32 *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (*l)
			__asm__ volatile("pause");
}

static void unlock(volatile u32 *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

static void work(u64 cpu)
{
	u64 n = rt_ncpus, mine = 0, nb = 0;
	for (u64 r = 0; r < ROUNDS; r++) {
		for (u64 b = cpu; b < SMP_BLOCKS; b += n) {
			u64 h = smp_fill_hash(&data[b * SMP_BLOCK_WORDS], r, b);
			mine += h;
			nb++;
			__atomic_fetch_add(&blocks_done, 1, __ATOMIC_RELAXED);
			lock(&shared.lock);
			shared.sum += h;
			shared.xr ^= h;
			shared.count++;
			unlock(&shared.lock);
		}
		if (cpu == 0 && (r + 1) % (ROUNDS / 8 ? ROUNDS / 8 : 1) == 0) {
			rt_puts("smp: cpu0 round ");
			rt_put_dec(r + 1);
			rt_putc('/');
			rt_put_dec(ROUNDS);
			rt_putc('\n');
		}
	}
	cpu_hash[cpu] = mine;
	cpu_blocks[cpu] = nb;
	__atomic_fetch_add(&finished, 1, __ATOMIC_RELEASE);
}

void rt_ap_main(u64 cpu)
{
	work(cpu);
	for (;;)
		__asm__ volatile("pause");
}

void guest_main(void)
{
	u64 n = rt_ncpus;
	rt_puts("smp: ");
	rt_put_dec(n);
	rt_puts(" vcpus, ");
	rt_put_dec(ROUNDS);
	rt_puts(" rounds\n");
	work(0);
	while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) != n)
		__asm__ volatile("pause");
	for (u64 c = 0; c < n; c++) {
		rt_puts("smp: cpu ");
		rt_put_dec(c);
		rt_puts(" blocks ");
		rt_put_dec(cpu_blocks[c]);
		rt_puts(" hash ");
		rt_put_hex(cpu_hash[c]);
		rt_putc('\n');
	}
	lock(&shared.lock);
	u64 res = smp_result(shared.sum, shared.xr, shared.count);
	u64 done = blocks_done;
	unlock(&shared.lock);
	rt_puts("smp: blocks ");
	rt_put_dec(done);
	rt_puts(" result ");
	rt_put_hex(res);
	rt_putc('\n');
	rt_exit(0);
}
