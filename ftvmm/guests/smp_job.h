/* smp_job.h - the SMP worker's deterministic job, shared by the guest
 * (smp.c) and the host tests that compute its expected result.
 *
 * BLOCKS blocks of BLOCK_WORDS 64-bit words; in round r, block b is
 * regenerated from (r, b) by xorshift and hashed (FNV-1a over its words).
 * The final result folds the sum and the XOR of all block hashes of all
 * rounds and does not depend on which vCPU did which block or when. */
#ifndef SMP_JOB_H
#define SMP_JOB_H

#define SMP_BLOCKS 256
#define SMP_BLOCK_WORDS 512	/* 4 KiB: one page per block */

static inline unsigned long smp_fill_hash(unsigned long *blk, unsigned long round,
					  unsigned long b)
{
	unsigned long x = (round + 1) * 0x9e3779b97f4a7c15UL ^ (b + 1) * 0xbf58476d1ce4e5b9UL;
	unsigned long h = 14695981039346656037UL;
	for (unsigned long i = 0; i < SMP_BLOCK_WORDS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		blk[i] = x;
		h = (h ^ x) * 1099511628211UL;
	}
	return h;
}

static inline unsigned long smp_result(unsigned long sum, unsigned long xr, unsigned long count)
{
	return (sum * 31 + xr) ^ (count << 48);
}

#endif
