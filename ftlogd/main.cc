// ftlogd - the kvm-ft FT logging daemon. Documentation/man/ftlogd.8.md.
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "daemon.h"

namespace {

// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
void Notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	sockaddr_un a{};
	a.sun_family = AF_UNIX;
	size_t n = std::min(strlen(path), sizeof(a.sun_path) - 1);
	std::memcpy(a.sun_path, path, n);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = 0; // abstract namespace
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, state, strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr *>(&a),
	       static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n));
	close(fd);
}

void Usage(FILE *f)
{
	std::fprintf(f, "Usage: ftlogd --config FILE [--check]\n"
			"       ftlogd --version\n");
}

} // namespace

int main(int argc, char **argv)
{
	std::string config;
	bool check = false;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if ((a == "--config" || a == "-c") && i + 1 < argc) {
			config = argv[++i];
		} else if (a == "--check") {
			check = true;
		} else if (a == "--version") {
			std::printf("ftlogd %s\n", KVMFT_VERSION);
			return 0;
		} else if (a == "--help" || a == "-h") {
			Usage(stdout);
			return 0;
		} else {
			Usage(stderr);
			return 2;
		}
	}
	if (config.empty()) {
		Usage(stderr);
		return 2;
	}
	kvmft::logd::Config cfg;
	kvmft::Status st = kvmft::logd::LoadConfig(config, &cfg);
	if (!st.ok()) {
		std::fprintf(stderr, "ftlogd: %s\n", st.msg().c_str());
		return 1;
	}
	if (check) {
		std::printf("%s: OK\n", config.c_str());
		return 0;
	}
	// Held outputs of every protected VM wait for this daemon's ACKs:
	// on a host whose vCPUs keep every core busy, a normal-priority
	// daemon waits milliseconds for a CPU (Documentation/ftlogd.md,
	// "Scheduling"). Its threads sleep in poll() between frames.
	cpu_set_t cpus;
	int ncpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 0;
	unsigned prio = kvmft::logd::EffectivePriority(cfg, ncpus);
	if (prio != cfg.realtime_priority)
		std::fprintf(stderr, "ftlogd: one CPU: running at normal priority (give "
			     "realtime_priority in %s to force SCHED_FIFO)\n", config.c_str());
	if (prio) {
		sched_param sp{};
		sp.sched_priority = static_cast<int>(prio);
		if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
			std::fprintf(stderr, "ftlogd: realtime_priority %u: %s; running at normal "
				     "priority\n", prio, std::strerror(errno));
	}
	kvmft::logd::Daemon d(std::move(cfg));
	st = d.Init();
	if (!st.ok()) {
		std::fprintf(stderr, "ftlogd: %s\n", st.msg().c_str());
		return 1;
	}
	Notify("READY=1\nSTATUS=FT logging ready");
	int rc = d.Run();
	Notify("STOPPING=1");
	return rc;
}
