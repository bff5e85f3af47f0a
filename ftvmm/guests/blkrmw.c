/* blkrmw.c - virtio-blk driver and read-modify-write rounds. Probes the
 * virtio-mmio device at 0xd0000000 (magic, version 2, device id 2),
 * negotiates VIRTIO_F_VERSION_1 (+ FLUSH), sets up one split virtqueue in
 * its own RAM and takes the completion interrupt on PIC line 5
 * (InterruptStatus / InterruptACK). Then, with the PIT ticking:
 *   - a read past the end must fail with VIRTIO_BLK_S_IOERR;
 *   - sectors 0..NSEC-1 whose checksum (FNV-1a of bytes 0..503, in bytes
 *     504..511) is wrong are formatted;
 *   - ROUNDS rounds: read each sector, check its checksum, change it,
 *     write it back, read it again and compare; flush; read all of them
 *     in one request and print their checksum; spin without exits (every
 *     4th round for 3 timer ticks, which only a kick can deliver).
 * What is written depends only on the disk's initial contents, so a run
 * that fails over mid-way leaves the same disk as one that does not. */
#include "rt.h"
#include "virtio.h"

#define MMIO(off) (*(volatile u32 *)(0xd0000000UL + (off)))
#define QN 8
#define NSEC 8
#define ROUNDS 24
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define FNV_OFF 14695981039346656037UL
#define FNV_PRIME 1099511628211UL

struct desc {
	u64 addr;
	u32 len;
	u16 flags, next;
};

static struct desc desc[QN] __attribute__((aligned(16)));
static struct {
	u16 flags, idx, ring[QN], used_event;
} avail __attribute__((aligned(4)));
static struct {
	u16 flags, idx;
	struct {
		u32 id, len;
	} ring[QN];
	u16 avail_event;
} used __attribute__((aligned(8)));
static struct {
	u32 type, reserved;
	u64 sector;
} hdr;
static volatile u8 status;
static u8 all[NSEC * 512], sec[512];
/* Only the device writes this page: a snapshot delta must carry it. */
static u8 back[4096] __attribute__((aligned(4096)));
static volatile u64 irqs, requests, work;
static volatile u32 isr_bits;
static volatile u64 tick_hash = FNV_OFF;

#define barrier() __asm__ volatile("" ::: "memory")

static void blk_irq(void)
{
	u32 s = MMIO(0x60);	/* InterruptStatus */
	MMIO(0x64) = s;		/* InterruptACK */
	isr_bits |= s;
	irqs++;
}

static void tick(u64 rip)
{
	tick_hash = (tick_hash ^ rip ^ work) * FNV_PRIME;
}

static void fail(const char *what)
{
	rt_cli();
	rt_puts("blkrmw FAILED: ");
	rt_puts(what);
	rt_putc('\n');
	rt_exit(3);
}

static u64 fnv(const u8 *p, u64 n)
{
	u64 h = FNV_OFF;
	for (u64 i = 0; i < n; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

static u64 stored_sum(const u8 *s) { return *(const u64 *)(s + 504); }
static void seal(u8 *s) { *(u64 *)(s + 504) = fnv(s, 504); }

/* One request: header, optional data buffer, status byte. Returns the
 * status the device wrote. */
static u8 submit(u32 type, u64 sector, void *data, u32 len, int device_writes)
{
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status = 0xff;
	int n = 1;
	desc[0] = (struct desc){(u64)&hdr, 16, 1, 1};
	if (len) {
		desc[1] = (struct desc){(u64)data, len, (u16)(1 | (device_writes ? 2 : 0)), 2};
		n = 2;
	}
	desc[n] = (struct desc){(u64)&status, 1, 2, 0};
	u16 i = avail.idx;
	avail.ring[i % QN] = 0;
	barrier();
	avail.idx = i + 1;
	barrier();
	u64 before = irqs;
	MMIO(0x50) = 0;		/* QueueNotify: done when this returns */
	while (irqs == before)	/* the interrupt comes right after it */
		;
	barrier();
	if (used.idx != (u16)(i + 1) || used.ring[i % QN].id != 0)
		fail("used ring not updated");
	requests++;
	return status;
}

static void check(const char *err)
{
	if (err)
		fail(err);
}

static void setup(void)
{
	/* VIRTIO_BLK_F_FLUSH, VIRTIO_F_VERSION_1 */
	check(vio_init(0xd0000000UL, 2, 1UL << 9 | 1UL << 32));
	check(vio_queue(0xd0000000UL, 0, QN, desc, &avail, &used));
	check(vio_driver_ok(0xd0000000UL));
}

static void spin(u64 n)
{
	for (u64 i = 0; i < n; i++)
		work++;
}

void guest_main(void)
{
	rt_irq_handler(5, blk_irq);
	rt_pic_init(1 | 1 << 5);
	rt_pit_start(500, tick);
	rt_sti();
	setup();
	u64 cap = MMIO(0x100) | (u64)MMIO(0x104) << 32;
	rt_puts("virtio-blk: ");
	rt_put_dec(cap);
	rt_puts(" sectors, id ");
	u8 id[21] = {0};
	if (submit(T_GET_ID, 0, id, 20, 1) != 0)
		fail("GET_ID");
	rt_puts((const char *)id);
	rt_putc('\n');
	if (cap < NSEC)
		fail("disk too small");
	if (submit(T_IN, cap, sec, 512, 1) != 1)
		fail("a read past the end did not fail");
	rt_puts("read past the end: I/O error, as it should\n");

	if (submit(T_IN, 0, all, sizeof(all), 1) != 0)
		fail("read");
	u64 formatted = 0;
	for (int k = 0; k < NSEC; k++) {
		u8 *s = all + 512 * k;
		if (stored_sum(s) == fnv(s, 504))
			continue;
		for (int i = 0; i < 504; i++)
			s[i] = (u8)(k * 16 + i);
		seal(s);
		formatted++;
	}
	if (formatted && submit(T_OUT, 0, all, sizeof(all), 0) != 0)
		fail("write");
	rt_puts("formatted ");
	rt_put_dec(formatted);
	rt_puts(" sectors\n");

	for (u64 r = 1; r <= ROUNDS; r++) {
		for (int k = 0; k < NSEC; k++) {
			if (submit(T_IN, k, sec, 512, 1) != 0)
				fail("read");
			if (stored_sum(sec) != fnv(sec, 504))
				fail("checksum");
			for (int i = 0; i < 504; i++)
				sec[i] = (u8)(sec[i] * 7 + r + k + sec[(i + 1) % 504]);
			seal(sec);
			if (submit(T_OUT, k, sec, 512, 0) != 0)
				fail("write");
			if (submit(T_IN, k, back, 512, 1) != 0)
				fail("read back");
			for (int i = 0; i < 512; i++)
				if (back[i] != sec[i])
					fail("read back differs from what was written");
		}
		if (submit(T_FLUSH, 0, 0, 0, 0) != 0)
			fail("flush");
		if (submit(T_IN, 0, all, sizeof(all), 1) != 0)
			fail("read");
		rt_puts("round ");
		rt_put_dec(r);
		rt_puts(" sum ");
		rt_put_hex(fnv(all, sizeof(all)));
		rt_putc('\n');
		if (r % 4) {
			spin(1000000);
		} else {	/* 3 ticks without an exit: kicks, checkpoints */
			u64 t = rt_ticks;
			while (rt_ticks < t + 3)
				work++;
		}
	}
	rt_cli();
	if (isr_bits != 1)
		fail("interrupt status other than used-buffer");
	rt_puts("blkrmw done ");
	rt_put_dec(requests);
	rt_puts(" requests, sum ");
	rt_put_hex(fnv(all, sizeof(all)));
	rt_putc('\n');
	rt_exit(0);
}
