// tcp_pair - the baseline for bench/logd: plain TCP on the same path as
// the FT log. "stream" sends BYTES as fast as possible and reports MB/s
// (the receiver's view); "rr" does COUNT 64-byte request/response round
// trips and reports p50/p99 in microseconds. TCP_NODELAY as ftlogd.
//
//   tcp_pair server ADDR:PORT                 (serves both modes, once)
//   tcp_pair stream ADDR:PORT BYTES
//   tcp_pair rr ADDR:PORT COUNT
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "channel/net.h"
#include "ring/ring.h"

using namespace kvmft;

namespace {

bool Full(int fd, void *p, size_t n, bool wr)
{
	auto *b = static_cast<char *>(p);
	while (n) {
		ssize_t r = wr ? write(fd, b, n) : read(fd, b, n);
		if (r <= 0)
			return false;
		b += r;
		n -= static_cast<size_t>(r);
	}
	return true;
}

void Blocking(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int fl = 0;
	ioctl(fd, FIONBIO, &fl);
}

int Server(const SockAddr &a)
{
	UniqueFd l;
	Status st = ListenBound(a, SockOpts{}, &l);
	if (!st.ok()) {
		std::fprintf(stderr, "%s\n", st.msg().c_str());
		return 1;
	}
	for (;;) {
		int fd = accept(l.get(), nullptr, nullptr);
		if (fd < 0) {
			usleep(1000);
			continue;
		}
		Blocking(fd);
		char mode;
		uint64_t n;
		if (!Full(fd, &mode, 1, false) || !Full(fd, &n, 8, false))
			return 1;
		std::vector<char> buf(1 << 18);
		if (mode == 's') {
			uint64_t t0 = MonotonicNs(), left = n;
			while (left) {
				ssize_t r = read(fd, buf.data(), std::min<uint64_t>(left, buf.size()));
				if (r <= 0)
					return 1;
				left -= static_cast<uint64_t>(r);
			}
			double s = (MonotonicNs() - t0) / 1e9;
			std::printf("{\"MBps\": %.1f}\n", n / s / 1e6);
			Full(fd, &n, 8, true);
		} else {
			for (uint64_t i = 0; i < n; i++)
				if (!Full(fd, buf.data(), 64, false) || !Full(fd, buf.data(), 64, true))
					return 1;
		}
		close(fd);
		return 0;
	}
}

int Client(const std::string &mode, const SockAddr &a, uint64_t n)
{
	UniqueFd fd;
	Status st = ConnectBound(SockAddr(), a, SockOpts{}, 5000, &fd);
	if (!st.ok()) {
		std::fprintf(stderr, "%s\n", st.msg().c_str());
		return 1;
	}
	Blocking(fd.get());
	char m = mode == "stream" ? 's' : 'r';
	Full(fd.get(), &m, 1, true);
	Full(fd.get(), &n, 8, true);
	std::vector<char> buf(1 << 18, 'x');
	if (m == 's') {
		uint64_t t0 = MonotonicNs(), left = n;
		while (left) {
			size_t k = std::min<uint64_t>(left, buf.size());
			if (!Full(fd.get(), buf.data(), k, true))
				return 1;
			left -= k;
		}
		uint64_t done;
		Full(fd.get(), &done, 8, false); // the receiver has it all
		std::printf("{\"MBps\": %.1f}\n", n / ((MonotonicNs() - t0) / 1e9) / 1e6);
		return 0;
	}
	std::vector<uint64_t> rtt;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t = MonotonicNs();
		if (!Full(fd.get(), buf.data(), 64, true) || !Full(fd.get(), buf.data(), 64, false))
			return 1;
		rtt.push_back(MonotonicNs() - t);
	}
	std::sort(rtt.begin(), rtt.end());
	std::printf("{\"p50_us\": %.1f, \"p99_us\": %.1f}\n", rtt[rtt.size() / 2] / 1e3,
		    rtt[rtt.size() * 99 / 100] / 1e3);
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	SockAddr a;
	if (argc < 3 || !ParseSockAddr(argv[2], false, &a).ok()) {
		std::fprintf(stderr, "usage: tcp_pair { server | stream | rr } ADDR:PORT [N]\n");
		return 2;
	}
	std::string mode = argv[1];
	if (mode == "server")
		return Server(a);
	if (argc != 4)
		return 2;
	return Client(mode, a, std::strtoull(argv[3], nullptr, 10));
}
