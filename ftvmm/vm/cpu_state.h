// cpu_state.h - the vCPU state of a CKPT_CPU record (struct kvm_ft_vmm_cpu
// followed by KVM's own structs, uapi/linux/kvm_ft_vmm.h).
#pragma once

#include <linux/kvm_ft_vmm.h>

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "vm/vm.h"

namespace kvmft::vmm {

// Builds a complete CKPT_CPU record (header type and len set) in *rec.
// vcpu: which vCPU (SMP).
Status SaveCpu(Vm &vm, std::vector<uint8_t> *rec, unsigned vcpu = 0);
// rec: a CKPT_CPU record of hdr->len bytes, validated here.
Status LoadCpu(Vm &vm, const kvm_ft_rec_hdr *rec, unsigned vcpu = 0);

} // namespace kvmft::vmm
