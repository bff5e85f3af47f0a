// SPDX-License-Identifier: GPL-2.0
/*
 * ft_probes.c - probes on kvm.ko's tracepoints.
 *
 * kvm.ko may load before or after us and may unload while we stay, so its
 * tracepoints are found by name through the tracepoint module notifier
 * (as lttng-modules does): on MODULE_STATE_COMING of "kvm" we walk its
 * tracepoint table and register a probe on each one we know; on
 * MODULE_STATE_GOING we unregister them. Registering the notifier replays
 * COMING for a kvm.ko already loaded; unregistering replays GOING.
 *
 * Probe context: preemption disabled, and for kvm_entry/kvm_exit
 * interrupts disabled. Probes never sleep and never allocate: they build
 * a record on the stack and hand it to ft_ring_write().
 *
 * The exit reason is not a kvm_exit argument; it comes from
 * kvm_x86_ops.get_exit_info(), as the tracepoint's own fast-assign does.
 * kvm_x86_ops is not exported, so its address comes from kallsyms, whose
 * lookup function is found through a kprobe (compat.h). Without it, EXIT
 * records carry KVM_FT_EXIT_REASON_UNKNOWN and the feature bit is clear.
 * kvm_get_running_vcpu() is exported, but calling it would make kvm_ft.ko
 * depend on kvm.ko (which may load after us): it is looked up the same
 * way when kvm.ko arrives.
 */
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/tracepoint.h>
#include "compat.h"
#include "ft_internal.h"

u64 ft_features = KVM_FT_FEAT_RING | KVM_FT_FEAT_EXIT | KVM_FT_FEAT_PIO |
		  KVM_FT_FEAT_MMIO | KVM_FT_FEAT_MSR | KVM_FT_FEAT_INJ_VIRQ |
		  KVM_FT_FEAT_ENTRY | KVM_FT_FEAT_ATTACH_PID | KVM_FT_FEAT_APPEND;

static wrapper_kallsyms_lookup_name_t ft_lookup_name;
static struct kvm_x86_ops *ft_x86_ops;	/* kvm.ko's, while it is loaded */
/* kvm.ko's kvm_get_running_vcpu(), while it is loaded (via kallsyms). */
static struct kvm_vcpu *(*ft_running_vcpu)(void);

static inline u64 ft_rip(struct kvm_vcpu *vcpu)
{
	/* SVM caches RIP on every exit; VMX only on demand. */
	if (test_bit(VCPU_REGS_RIP, (unsigned long *)&vcpu->arch.regs_avail))
		return vcpu->arch.regs[VCPU_REGS_RIP];
	return 0;
}

static inline struct ft_ring *ft_vcpu_ring(struct kvm_vcpu *vcpu,
					   struct ft_vm **vmp)
{
	struct ft_vm *vm = ft_vm_by_kvm(vcpu->kvm);

	if (!vm)
		return NULL;
	if (vcpu->vcpu_idx >= vm->nr_vcpus) {
		atomic64_inc(&vm->unmapped);
		return NULL;
	}
	*vmp = vm;
	return &vm->rings[vcpu->vcpu_idx];
}

static void ft_probe_exit(void *data, struct kvm_vcpu *vcpu, u32 isa)
{
	struct kvm_ft_rec_exit rec = { .hdr.type = KVM_FT_REC_EXIT };
	struct kvm_x86_ops *ops = READ_ONCE(ft_x86_ops);
	struct ft_ring *r;
	struct ft_vm *vm;
	u32 ii, ie;

	if (list_empty(&ft_vms))
		return;
	r = ft_vcpu_ring(vcpu, &vm);
	if (!r)
		return;
	WRITE_ONCE(r->task, current);
	r->exits++;
	rec.isa = isa;
	rec.rip = ft_rip(vcpu);
	rec.reason = KVM_FT_EXIT_REASON_UNKNOWN;
	if (ops && ops->get_exit_info)
		ops->get_exit_info(vcpu, &rec.reason, &rec.info1, &rec.info2,
				   &ii, &ie);
	ft_ring_write(vm, r, &rec.hdr, sizeof(rec));
}

static void ft_probe_entry(void *data, struct kvm_vcpu *vcpu,
			   bool force_immediate_exit)
{
	struct kvm_ft_rec_entry rec = { .hdr.type = KVM_FT_REC_ENTRY };
	struct ft_ring *r;
	struct ft_vm *vm;

	if (list_empty(&ft_vms))
		return;
	r = ft_vcpu_ring(vcpu, &vm);
	if (!r)
		return;
	rec.rip = ft_rip(vcpu);
	rec.immediate_exit = force_immediate_exit;
	ft_ring_write(vm, r, &rec.hdr, sizeof(rec));
	WRITE_ONCE(r->task, NULL);
}

/*
 * For probes without a vcpu argument: the ring of the vCPU this thread is
 * running. KVM knows it (kvm_get_running_vcpu(), set from vcpu_load() to
 * vcpu_put(), so also while a port read is completed at the start of
 * KVM_RUN); without kallsyms, fall back to the thread that last exited a
 * vCPU and has not re-entered it.
 */
static inline struct ft_ring *ft_task_ring(struct ft_vm **vmp)
{
	struct kvm_vcpu *(*running)(void) = READ_ONCE(ft_running_vcpu);
	struct kvm_vcpu *vcpu;

	if (list_empty(&ft_vms))
		return NULL;
	if (!running)
		return ft_ring_by_task(vmp);
	vcpu = running();
	return vcpu ? ft_vcpu_ring(vcpu, vmp) : NULL;
}

static void ft_probe_pio(void *data, unsigned int rw, unsigned int port,
			 unsigned int size, unsigned int count,
			 const void *val)
{
	struct kvm_ft_rec_pio rec = { .hdr.type = KVM_FT_REC_PIO };
	struct ft_ring *r;
	struct ft_vm *vm;

	r = ft_task_ring(&vm);
	if (!r)
		return;
	rec.port = port;
	rec.size = size;
	rec.dir = rw ? KVM_FT_DIR_OUT : KVM_FT_DIR_IN;
	rec.count = count;
	if (val && size <= sizeof(rec.value))
		memcpy(&rec.value, val, size);
	ft_ring_write(vm, r, &rec.hdr, sizeof(rec));
}

/* kvm_mmio types (include/trace/events/kvm.h) */
#define FT_MMIO_READ_UNSATISFIED	0
#define FT_MMIO_READ			1
#define FT_MMIO_WRITE			2

static void ft_probe_mmio(void *data, int type, int len, u64 gpa, void *val)
{
	struct kvm_ft_rec_mmio rec = { .hdr.type = KVM_FT_REC_MMIO };
	struct ft_ring *r;
	struct ft_vm *vm;

	/* A read shows up twice: unsatisfied, then with its value. */
	if (type == FT_MMIO_READ_UNSATISFIED)
		return;
	r = ft_task_ring(&vm);
	if (!r)
		return;
	rec.gpa = gpa;
	rec.len = len;
	rec.dir = type == FT_MMIO_WRITE ? KVM_FT_DIR_OUT : KVM_FT_DIR_IN;
	if (val && len > 0 && len <= sizeof(rec.value))
		memcpy(&rec.value, val, len);
	ft_ring_write(vm, r, &rec.hdr, sizeof(rec));
}

static void ft_probe_msr(void *data, unsigned int write, u32 ecx, u64 val,
			 bool exception)
{
	struct kvm_ft_rec_msr rec = { .hdr.type = KVM_FT_REC_MSR };
	struct ft_ring *r;
	struct ft_vm *vm;

	r = ft_task_ring(&vm);
	if (!r)
		return;
	rec.index = ecx;
	rec.dir = write ? KVM_FT_DIR_OUT : KVM_FT_DIR_IN;
	rec.exception = exception;
	rec.value = val;
	ft_ring_write(vm, r, &rec.hdr, sizeof(rec));
}

static void ft_probe_inj_virq(void *data, unsigned int vector, bool soft,
			      bool reinjected)
{
	struct kvm_ft_rec_inj_virq rec = { .hdr.type = KVM_FT_REC_INJ_VIRQ };
	struct ft_ring *r;
	struct ft_vm *vm;

	r = ft_task_ring(&vm);
	if (!r)
		return;
	rec.vector = vector;
	rec.soft = soft;
	rec.reinjected = reinjected;
	ft_ring_write(vm, r, &rec.hdr, sizeof(rec));
}

struct ft_probe {
	const char *name;
	void *fn;
	struct tracepoint *tp;	/* registered on, or NULL */
};

static struct ft_probe ft_probes[] = {
	{ "kvm_exit", ft_probe_exit },
	{ "kvm_entry", ft_probe_entry },
	{ "kvm_pio", ft_probe_pio },
	{ "kvm_mmio", ft_probe_mmio },
	{ "kvm_msr", ft_probe_msr },
	{ "kvm_inj_virq", ft_probe_inj_virq },
};

static void ft_probes_detach(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(ft_probes); i++) {
		if (!ft_probes[i].tp)
			continue;
		tracepoint_probe_unregister(ft_probes[i].tp, ft_probes[i].fn,
					    NULL);
		ft_probes[i].tp = NULL;
	}
	WRITE_ONCE(ft_x86_ops, NULL);
	WRITE_ONCE(ft_running_vcpu, NULL);
	tracepoint_synchronize_unregister();
}

static void ft_probes_attach(struct module *mod)
{
	unsigned int i;
	int j, err;

	for (i = 0; i < mod->num_tracepoints; i++) {
		struct tracepoint *tp =
			tracepoint_ptr_deref(&mod->tracepoints_ptrs[i]);

		for (j = 0; j < ARRAY_SIZE(ft_probes); j++) {
			if (ft_probes[j].tp || strcmp(tp->name, ft_probes[j].name))
				continue;
			err = tracepoint_probe_register(tp, ft_probes[j].fn, NULL);
			if (err)
				pr_warn("kvm_ft: cannot probe %s: %d\n", tp->name, err);
			else
				ft_probes[j].tp = tp;
		}
	}
	for (j = 0; j < ARRAY_SIZE(ft_probes); j++)
		if (!ft_probes[j].tp)
			pr_warn("kvm_ft: tracepoint %s not found in kvm.ko\n",
				ft_probes[j].name);
	if (ft_lookup_name) {
		WRITE_ONCE(ft_x86_ops,
			   (struct kvm_x86_ops *)ft_lookup_name("kvm_x86_ops"));
		WRITE_ONCE(ft_running_vcpu, (void *)ft_lookup_name("kvm_get_running_vcpu"));
	}
	if (ft_x86_ops)
		ft_features |= KVM_FT_FEAT_EXIT_REASON;
}

static int ft_tp_notify(struct notifier_block *nb, unsigned long val,
			void *data)
{
	struct tp_module *tp_mod = data;

	if (strcmp(tp_mod->mod->name, "kvm"))
		return NOTIFY_OK;
	if (val == MODULE_STATE_COMING)
		ft_probes_attach(tp_mod->mod);
	else if (val == MODULE_STATE_GOING)
		ft_probes_detach();
	return NOTIFY_OK;
}

static struct notifier_block ft_tp_nb = {
	.notifier_call = ft_tp_notify,
};

int ft_probes_init(void)
{
	ft_lookup_name = wrapper_get_kallsyms_lookup_name();
	if (!ft_lookup_name)
		pr_info("kvm_ft: no kallsyms: exit reasons unavailable\n");
	return register_tracepoint_module_notifier(&ft_tp_nb);
}

void ft_probes_exit(void)
{
	unregister_tracepoint_module_notifier(&ft_tp_nb);
	tracepoint_synchronize_unregister();
}
