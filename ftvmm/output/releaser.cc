// output_release.cc - the ACK-driven output releaser thread.
#include "output/releaser.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace kvmft::vmm {

OutputReleaser::OutputReleaser(Console *console, std::function<uint64_t()> ack,
			       UniqueFd ack_fd, NetLink *net)
	: console_(console), net_(net), ack_(std::move(ack)), ack_fd_(std::move(ack_fd)),
	  stop_fd_(eventfd(0, EFD_CLOEXEC))
{
	thr_ = std::thread([this] { Run(); });
}

OutputReleaser::~OutputReleaser()
{
	uint64_t one = 1;
	if (stop_fd_.valid() && write(stop_fd_.get(), &one, sizeof(one)) == sizeof(one))
		thr_.join();
	else
		thr_.detach(); // cannot happen with a valid eventfd
}

void OutputReleaser::Run()
{
	// Held outputs wait for this thread: let it preempt the vCPU threads
	// when the host is loaded (SCHED_FIFO 1 with CAP_SYS_NICE; without,
	// it stays a normal thread). It only ever sleeps or releases.
	sched_param sp{};
	sp.sched_priority = 1;
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	pollfd p[2] = {{ack_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
	for (;;) {
		// Without a stop eventfd, poll only the ACKs and wake every
		// 100 ms to notice nothing (the destructor detaches).
		int n = poll(p, stop_fd_.valid() ? 2 : 1, stop_fd_.valid() ? -1 : 100);
		if (n < 0 && errno != EINTR)
			return;
		if (n > 0 && (p[1].revents & POLLIN))
			return;
		if (n > 0 && (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)))
			return;
		if (n > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;
			ssize_t r = read(ack_fd_.get(), &v, sizeof(v));
			(void)r; // EAGAIN: another reader emptied it; release anyway
			wakeups_++;
			uint64_t a = ack_();
			if (net_)
				net_->Release(a);
			console_->Release(a);
		}
	}
}

} // namespace kvmft::vmm
