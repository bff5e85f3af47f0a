/*
 * rt.h - tiny runtime of the test guests: port I/O, console, exit, PIC,
 * PIT and RTC helpers, and the ring-0 setup. A guest defines
 * `void guest_main(void)`, which runs in ring 3 with every port allowed by
 * the TSS I/O bitmap and interrupts off until it calls rt_sti(). (IOPL is
 * not used: this host's native ring 3 does not honour it.)
 */
#ifndef GUEST_RT_H
#define GUEST_RT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
/* Interrupt flag from ring 3: `int $0x30` (a DPL-3 gate; where the host
 * turns it into #UD the #UD handler emulates it) sets RFLAGS.IF of the
 * caller to RAX. */
static inline void rt_sti(void) { __asm__ volatile("int $0x30" :: "a"(1) : "memory"); }
static inline void rt_cli(void) { __asm__ volatile("int $0x30" :: "a"(0) : "memory"); }
/* Wait for one interrupt: `int $0x30` with RAX = 2, whose ring-0 handler
 * runs `sti; hlt; cli`, so the interrupt that ends the halt is taken
 * there (its handler runs nested, on the ring-0 stack; a tick function
 * sees a ring-0 RIP), then returns with the caller's IF unchanged. Use it
 * with interrupts off, re-checking the condition after each wakeup:
 *	rt_cli();
 *	while (!condition)
 *		rt_wait();
 * No wakeup is lost: an interrupt raised after the check is held by the
 * PIC until the `sti; hlt` pair, which takes it as it halts. Any
 * interrupt ends the wait (a PIT tick as well). */
void rt_wait(void);

extern u64 rt_mem_bytes;		/* RAM size from the VMM */
extern volatile u64 rt_ticks;		/* IRQ0 count (rt_pit_start) */

void guest_main(void);		/* vCPU 0 */
/* vCPU n > 0 of an SMP guest (optional: without it they halt). */
void rt_ap_main(u64 cpu);
extern u64 rt_ncpus;		/* vCPUs (RDX at entry) */
void rt_exit(u8 code) __attribute__((noreturn));
void rt_putc(char c);
void rt_puts(const char *s);
void rt_put_hex(u64 v);
void rt_put_dec(u64 v);
/* Remap the PICs to 0x20/0x28 and unmask the given IRQ lines. */
void rt_pic_init(u16 unmask);
/* PIT channel 0 periodic at hz; each IRQ0 increments rt_ticks and calls
 * tick (may be 0) in ring 0 with the interrupted ring-3 RIP. */
void rt_pit_start(u32 hz, void (*tick)(u64 rip));
/* Call fn in ring 0, before the EOI, on each interrupt of PIC line irq
 * (1..15; IRQ0 is rt_pit_start's). */
void rt_irq_handler(int irq, void (*fn)(void));
u8 rt_cmos_read(u8 reg);
void rt_cmos_write(u8 reg, u8 v);

#endif
