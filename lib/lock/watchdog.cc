// watchdog.cc - the watchdog process (watchdog.h).
#include "lock/watchdog.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <new>

namespace kvmft::lock {

namespace {

int64_t Boottime()
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

} // namespace

Status Watchdog::Start(pid_t pgid, int64_t deadline, int64_t slice_ns,
		       std::unique_ptr<Watchdog> *out)
{
	void *p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return Status::Errno("watchdog: mmap");
	Shared *sh = new (p) Shared{};
	sh->deadline = deadline;
	pid_t pid = fork();
	if (pid < 0) {
		munmap(p, sizeof(Shared));
		return Status::Errno("watchdog: fork");
	}
	if (pid == 0) {
		// Only async-signal-safe calls from here on (we forked a
		// possibly multi-threaded process).
		prctl(PR_SET_NAME, "ftlock-wdog");
		struct timespec ts = {0, static_cast<long>(slice_ns)};
		while (!sh->stop) {
			if (Boottime() >= sh->deadline) {
				kill(-pgid, SIGKILL);
				sh->fired = 1;
				_exit(0);
			}
			nanosleep(&ts, nullptr);
		}
		_exit(0);
	}
	out->reset(new Watchdog(sh, pid));
	return Status::Ok();
}

Watchdog::~Watchdog()
{
	Disarm();
	waitpid(pid_, nullptr, 0);
	munmap(sh_, sizeof(Shared));
}

void Watchdog::Arm(int64_t deadline) { sh_->deadline = deadline; }

void Watchdog::Disarm() { sh_->stop = 1; }

bool Watchdog::Fired() const { return sh_->fired; }

} // namespace kvmft::lock
