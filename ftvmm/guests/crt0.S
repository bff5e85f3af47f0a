/*
 * crt0.S - test guest entry and interrupt stubs. ftvmm starts us in long
 * mode, ring 0, RSP = top of RAM - 4 KiB - n * 256 KiB, RDI = RAM bytes,
 * RSI = vCPU index n, RDX = vCPUs. rt_init(RDI, RSI, RDX) (rt.c) builds
 * this vCPU's GDT and TSS and the IDT and drops to ring 3.
 */
	.section .text.start, "ax"
	.globl _start
_start:
	andq $-16, %rsp
	call rt_init
1:	hlt
	jmp 1b

/* rt_load_segments(void): reload CS (0x08) and data segments (0x10). */
	.text
	.globl rt_load_segments
rt_load_segments:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	popq %rax
	pushq $0x08
	pushq %rax
	lretq

/* rt_enter_user(fn, stack, rflags, arg): iretq to ring 3, fn(arg). */
	.globl rt_enter_user
rt_enter_user:
	movq %rcx, %r8
	movw $0x1b, %ax
	movw %ax, %ds
	movw %ax, %es
	pushq $0x1b
	pushq %rsi
	pushq %rdx
	pushq $0x23
	pushq %rdi
	movq %r8, %rdi
	iretq

/* Stubs: push an error code (0 if the CPU gave none) and the vector. */
.macro STUB vec, err
	.globl isr_\vec
isr_\vec:
	.if \err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm

STUB 0,0; STUB 1,0; STUB 2,0; STUB 3,0; STUB 4,0; STUB 5,0; STUB 6,0
STUB 7,0; STUB 8,1; STUB 9,0; STUB 10,1; STUB 11,1; STUB 12,1; STUB 13,1
STUB 14,1; STUB 15,0; STUB 16,0; STUB 17,1; STUB 18,0; STUB 19,0
STUB 32,0; STUB 33,0; STUB 34,0; STUB 35,0; STUB 36,0; STUB 37,0; STUB 38,0
STUB 39,0; STUB 40,0; STUB 41,0; STUB 42,0; STUB 43,0; STUB 44,0; STUB 45,0
STUB 46,0; STUB 47,0; STUB 48,0

isr_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	movq %rsp, %rdi
	call rt_isr
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

	.section .rodata
	.globl rt_isr_table
rt_isr_table:
	.quad isr_0, isr_1, isr_2, isr_3, isr_4, isr_5, isr_6, isr_7
	.quad isr_8, isr_9, isr_10, isr_11, isr_12, isr_13, isr_14, isr_15
	.quad isr_16, isr_17, isr_18, isr_19
	.quad isr_32, isr_33, isr_34, isr_35, isr_36, isr_37, isr_38, isr_39
	.quad isr_40, isr_41, isr_42, isr_43, isr_44, isr_45, isr_46, isr_47
	.quad isr_48
	.section .note.GNU-stack, "", @progbits
