/* rt.c - test guest runtime (rt.h). Ring-0 code is kept short: on some
 * hosts it is emulated instruction by instruction. */
#include "rt.h"

struct frame {
	u64 r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	u64 vector, error, rip, cs, rflags, rsp, ss;
};

struct tss {
	u32 reserved0;
	u64 rsp0, rsp1, rsp2, reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3, iomap;
	u8 bitmap[8192 + 1];	/* I/O permission bitmap: all ports allowed */
} __attribute__((packed));

u64 rt_mem_bytes;
volatile u64 rt_ticks;
static void (*tick_fn)(u64 rip);
static void (*irq_fn[16])(void);
#define RT_MAX_CPUS 8
#define RT_CPU_STACK (256UL << 10)	/* ftvmm's per-vCPU stack spacing */
u64 rt_ncpus = 1;
/* Per vCPU: its own GDT (with its TSS) and TSS; the IDT is shared (every
 * vCPU writes the same gates). */
static u64 gdt[RT_MAX_CPUS][7] __attribute__((aligned(16)));
static u64 idt[2 * 49] __attribute__((aligned(16)));
static struct tss tss[RT_MAX_CPUS] __attribute__((aligned(16)));
void rt_ap_main(u64 cpu) __attribute__((weak));
extern const u64 rt_isr_table[];
void rt_load_segments(void);
void rt_enter_user(void (*fn)(u64), u64 stack, u64 rflags, u64 arg) __attribute__((noreturn));

static u64 *gdt_of(u64 cpu) { return gdt[cpu]; }

struct dtr {
	u16 limit;
	u64 base;
} __attribute__((packed));

static void set_gate(int vec, u64 fn, u64 dpl)
{
	idt[2 * vec] = (fn & 0xffff) | (0x08UL << 16) | ((0x8eUL | dpl << 5) << 40) |
		       ((fn >> 16 & 0xffff) << 48);
	idt[2 * vec + 1] = fn >> 32;
}

static void user_start(u64 cpu)
{
	if (cpu)
		rt_ap_main(cpu);
	else
		guest_main();
	rt_exit(0);
}

/* mem, cpu, ncpus: RDI, RSI, RDX as ftvmm starts each vCPU. */
void rt_init(u64 mem, u64 cpu, u64 ncpus)
{
	if (cpu && (!rt_ap_main || cpu >= RT_MAX_CPUS))
		for (;;)	/* a guest without SMP code: park this vCPU */
			__asm__ volatile("cli; hlt");
	/* Every vCPU stores the count before it uses it: an AP may run
	 * ahead of vCPU 0. */
	rt_ncpus = ncpus;
	if (!cpu)
		rt_mem_bytes = mem;
	u64 top = mem - 4096 - cpu * RT_CPU_STACK;
	struct tss *ts = &tss[cpu];
	u64 *gdt = gdt_of(cpu);
	u64 t = (u64)ts;
	gdt[1] = 0x00af9b000000ffffUL;	/* 0x08 kernel code */
	gdt[2] = 0x00cf93000000ffffUL;	/* 0x10 kernel data */
	gdt[3] = 0x00cff3000000ffffUL;	/* 0x1b user data */
	gdt[4] = 0x00affb000000ffffUL;	/* 0x23 user code */
	gdt[5] = (sizeof(*ts) - 1) | (t & 0xffffff) << 16 | 0x89UL << 40 |
		 (t >> 24 & 0xff) << 56;	/* 0x28 TSS */
	gdt[6] = t >> 32;
	ts->rsp0 = top - 64;
	ts->iomap = __builtin_offsetof(struct tss, bitmap);
	ts->bitmap[8192] = 0xff;
	struct dtr g = {7 * 8 - 1, (u64)gdt};
	__asm__ volatile("lgdt %0" :: "m"(g));
	rt_load_segments();
	__asm__ volatile("ltr %w0" :: "r"(0x28));
	for (int i = 0; i < 20; i++)
		set_gate(i, rt_isr_table[i], 0);
	for (int i = 0; i < 17; i++)
		set_gate(32 + i, rt_isr_table[20 + i], i == 16 ? 3 : 0);
	struct dtr d = {sizeof(idt) - 1, (u64)idt};
	__asm__ volatile("lidt %0" :: "m"(d));
	/* ring 3, interrupts off; user stack 64 KiB below ours */
	rt_enter_user(user_start, top - 65536, 0x3002, cpu);
}

extern const char rt_wait_woke[];

void rt_isr(struct frame *f)
{
	/* This host raises #UD for INT n in ring 3: emulate `int $0x30`. */
	if (f->vector == 6 && *(const u16 *)f->rip == 0x30cd) {
		f->rip += 2;
		f->vector = 48;
	}
	if (f->vector < 32) {
		rt_puts("guest exception ");
		rt_put_dec(f->vector);
		rt_puts(" at ");
		rt_put_hex(f->rip);
		rt_puts(" rflags ");
		rt_put_hex(f->rflags);
		rt_puts(" cs ");
		rt_put_hex(f->cs);
		rt_puts(" error ");
		rt_put_hex(f->error);
		rt_putc('\n');
		rt_exit(0x7e);
	}
	if (f->vector == 48 && f->rax == 2) {	/* rt_wait */
		__asm__ volatile("sti; hlt\n.globl rt_wait_woke\nrt_wait_woke: cli" ::: "memory");
		return;
	}
	if (f->vector == 48) {	/* rt_sti / rt_cli */
		f->rflags = (f->rflags & ~0x200UL) | (f->rax ? 0x200UL : 0);
		return;
	}
	if (f->vector == 32) {
		rt_ticks++;
		if (tick_fn)
			tick_fn(f->rip);
	} else if (f->vector < 48 && irq_fn[f->vector - 32]) {
		irq_fn[f->vector - 32]();
	}
	/* Woken from rt_wait's hlt: return with IF=0 (the cli there would
	 * clear it anyway). An IRET that sets IF in ring 0 opens an interrupt
	 * window at a point this host's KVM does not report reliably; with
	 * IF=0 the next interrupt waits for a deterministic exit. */
	if (f->rip == (u64)rt_wait_woke)
		f->rflags &= ~0x200UL;
	if (f->vector >= 40)
		outb(0xa0, 0x20);
	outb(0x20, 0x20);
}

void rt_wait(void)
{
	__asm__ volatile("int $0x30" :: "a"(2) : "memory");
}

void rt_exit(u8 code)
{
	for (;;)
		outb(0x501, code);
}

void rt_putc(char c) { outb(0x3f8, (u8)c); }

void rt_puts(const char *s)
{
	while (*s)
		rt_putc(*s++);
}

void rt_put_hex(u64 v)
{
	rt_puts("0x");
	for (int i = 60; i >= 0; i -= 4)
		rt_putc("0123456789abcdef"[(v >> i) & 15]);
}

void rt_put_dec(u64 v)
{
	char buf[24];
	int n = 0;
	do {
		buf[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (n)
		rt_putc(buf[--n]);
}

void rt_pic_init(u16 unmask)
{
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
	outb(0x21, (u8)~unmask);
	outb(0xa1, (u8)(~unmask >> 8));
}

void rt_pit_start(u32 hz, void (*tick)(u64 rip))
{
	u32 div = 1193182 / hz;
	tick_fn = tick;
	outb(0x43, 0x34);	/* channel 0, lo/hi, mode 2 */
	outb(0x40, div & 0xff);
	outb(0x40, div >> 8);
}

void rt_irq_handler(int irq, void (*fn)(void))
{
	irq_fn[irq & 15] = fn;
}

u8 rt_cmos_read(u8 reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

void rt_cmos_write(u8 reg, u8 v)
{
	outb(0x70, reg);
	outb(0x71, v);
}
