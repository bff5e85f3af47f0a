// fthbd - active/passive failover of a stateful service
// (Documentation/fthbd.md). One per server of the pair.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "daemon.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

} // namespace

int main(int argc, char **argv)
{
	std::string conf;
	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--config") && i + 1 < argc)
			conf = argv[++i];
		else if (!std::strcmp(argv[i], "--version")) {
			std::printf("fthbd %s\n", KVMFT_VERSION);
			return 0;
		} else {
			std::fprintf(stderr, "usage: fthbd --config FILE\n");
			return 2;
		}
	}
	if (conf.empty()) {
		std::fprintf(stderr, "usage: fthbd --config FILE\n");
		return 2;
	}
	kvmft::hbd::Config c;
	kvmft::Status st = kvmft::hbd::LoadConfig(conf, &c);
	if (!st.ok()) {
		std::fprintf(stderr, "fthbd: %s\n", st.msg().c_str());
		return 2;
	}
	struct sigaction sa {};
	sa.sa_handler = OnSignal;
	sigaction(SIGTERM, &sa, nullptr);
	sigaction(SIGINT, &sa, nullptr);
	kvmft::hbd::Daemon d(c);
	st = d.Run(g_stop);
	if (!st.ok()) {
		std::fprintf(stderr, "fthbd: %s\n", st.msg().c_str());
		return 1;
	}
	return 0;
}
