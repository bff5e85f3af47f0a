// kick.h - taking a vCPU's thread out of KVM_RUN. One real-time signal
// (SIGRTMIN + 1); its handler sets immediate_exit in the kvm_run of the
// vCPU the receiving thread runs, so that a KVM_RUN under way returns
// EINTR and one about to start returns at once: a kick is never lost
// between a check and the entry. Every replication mode kicks this way.
#pragma once

#include <linux/kvm.h>
#include <pthread.h>

namespace kvmft::vmm::kick {

// The signal (timers aimed at a vCPU thread use it too).
int Signal();
// Installs the handler (idempotent; the signal is process-wide).
void Install();
// The calling thread runs the vCPU of run (nullptr: none).
void Bind(kvm_run *run);
// Unbinds the calling thread if it is bound to run.
void Unbind(kvm_run *run);
// Kicks thread t.
void Send(pthread_t t);

} // namespace kvmft::vmm::kick
