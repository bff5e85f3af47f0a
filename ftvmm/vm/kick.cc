// kick.cc - the vCPU kick signal (kick.h).
#include "vm/kick.h"

#include <signal.h>

namespace kvmft::vmm::kick {

namespace {
thread_local kvm_run *t_run;

void OnKick(int)
{
	if (t_run)
		t_run->immediate_exit = 1;
}
} // namespace

int Signal() { return SIGRTMIN + 1; }

void Install()
{
	struct sigaction sa {};
	sa.sa_handler = OnKick;
	sigemptyset(&sa.sa_mask);
	sigaction(Signal(), &sa, nullptr);
}

void Bind(kvm_run *run) { t_run = run; }

void Unbind(kvm_run *run)
{
	if (t_run == run)
		t_run = nullptr;
}

void Send(pthread_t t) { pthread_kill(t, Signal()); }

} // namespace kvmft::vmm::kick
