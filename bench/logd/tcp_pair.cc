// tcp_pair - the baselines for bench/logd on the same path as the FT log.
// "stream" sends BYTES over plain TCP as fast as possible and reports
// MB/s (the receiver's view); "tls" does the same through a mutually
// authenticated TLS 1.3 connection made exactly as ftlogd makes its own
// (lib/channel TlsContext: same cipher order, same certificates), so a
// run can tell the cost of TLS from the cost of the FT machinery; "rr"
// does COUNT 64-byte request/response round trips over TCP and reports
// p50/p99 in microseconds. TCP_NODELAY as ftlogd. Both sides report the
// CPU time they used (user + system, cpu_s).
//
//   tcp_pair server ADDR:PORT [CA CERT KEY]   (serves one client; TLS
//                                              if given certificates)
//   tcp_pair stream ADDR:PORT BYTES
//   tcp_pair tls ADDR:PORT BYTES CA CERT KEY [PEER_NAME]
//   tcp_pair rr ADDR:PORT COUNT [GAP_US]      (GAP_US: idle time before
//                                              each round trip)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/cpu_time.h"
#include "channel/net.h"
#include "channel/tls.h"
#include "ring/ring.h"

using namespace kvmft;

namespace {

using kvmft::CpuSeconds;

// A byte stream: plain TCP, or TLS over it (blocking socket).
class Stream {
public:
	Stream(UniqueFd fd, std::unique_ptr<TlsConn> tls) : fd_(std::move(fd)), tls_(std::move(tls)) {}
	int fd() const { return tls_ ? tls_->fd() : fd_.get(); }

	// Some bytes, at least one; <= 0 on error or end.
	ssize_t Some(void *p, size_t n, bool wr)
	{
		if (!tls_)
			return wr ? write(fd(), p, n) : read(fd(), p, n);
		size_t done = 0;
		Status err;
		TlsConn::Io r = wr ? tls_->Write(p, n, &done, &err) : tls_->Read(p, n, &done, &err);
		if (r != TlsConn::kOk) {
			if (r == TlsConn::kError)
				std::fprintf(stderr, "tcp_pair: %s\n", err.msg().c_str());
			return -1;
		}
		return static_cast<ssize_t>(done);
	}

	bool Full(void *p, size_t n, bool wr)
	{
		auto *b = static_cast<char *>(p);
		while (n) {
			ssize_t r = Some(b, n, wr);
			if (r <= 0)
				return false;
			b += r;
			n -= static_cast<size_t>(r);
		}
		return true;
	}

private:
	UniqueFd fd_;
	std::unique_ptr<TlsConn> tls_;
};

void Blocking(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int fl = 0;
	ioctl(fd, FIONBIO, &fl);
}

// TLS over fd when ctx is set; the handshake checks the peer like ftlogd.
bool Open(UniqueFd fd, const std::shared_ptr<TlsContext> &ctx, const std::string &peer_name,
	  std::unique_ptr<Stream> *out)
{
	Blocking(fd.get());
	if (!ctx) {
		*out = std::make_unique<Stream>(std::move(fd), nullptr);
		return true;
	}
	auto tls = std::make_unique<TlsConn>(ctx, std::move(fd));
	Status st = tls->Handshake(PeerCheck{peer_name, ""}, 5000);
	if (!st.ok()) {
		std::fprintf(stderr, "tcp_pair: %s\n", st.msg().c_str());
		return false;
	}
	*out = std::make_unique<Stream>(UniqueFd(), std::move(tls));
	return true;
}

int Server(const SockAddr &a, const std::shared_ptr<TlsContext> &ctx)
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
		std::unique_ptr<Stream> s;
		if (!Open(UniqueFd(fd), ctx, "", &s))
			return 1;
		char mode;
		uint64_t n;
		if (!s->Full(&mode, 1, false) || !s->Full(&n, 8, false))
			return 1;
		std::vector<char> buf(1 << 18);
		if (mode == 's') {
			uint64_t t0 = MonotonicNs(), left = n;
			double c0 = CpuSeconds();
			while (left) {
				ssize_t r = s->Some(buf.data(), std::min<uint64_t>(left, buf.size()), false);
				if (r <= 0)
					return 1;
				left -= static_cast<uint64_t>(r);
			}
			double sec = (MonotonicNs() - t0) / 1e9;
			std::printf("{\"MBps\": %.1f, \"cpu_s\": %.3f}\n", n / sec / 1e6,
				    CpuSeconds() - c0);
			s->Full(&n, 8, true);
		} else {
			for (uint64_t i = 0; i < n; i++)
				if (!s->Full(buf.data(), 64, false) || !s->Full(buf.data(), 64, true))
					return 1;
		}
		return 0;
	}
}

int Client(char m, const SockAddr &a, uint64_t n, const std::shared_ptr<TlsContext> &ctx,
	   const std::string &peer_name, unsigned gap_us)
{
	UniqueFd fd;
	Status st = ConnectBound(SockAddr(), a, SockOpts{}, 5000, &fd);
	if (!st.ok()) {
		std::fprintf(stderr, "%s\n", st.msg().c_str());
		return 1;
	}
	std::unique_ptr<Stream> s;
	if (!Open(std::move(fd), ctx, peer_name, &s))
		return 1;
	s->Full(&m, 1, true);
	s->Full(&n, 8, true);
	std::vector<char> buf(1 << 18, 'x');
	if (m == 's') {
		uint64_t t0 = MonotonicNs(), left = n;
		double c0 = CpuSeconds();
		while (left) {
			size_t k = std::min<uint64_t>(left, buf.size());
			if (!s->Full(buf.data(), k, true))
				return 1;
			left -= k;
		}
		uint64_t done;
		s->Full(&done, 8, false); // the receiver has it all
		std::printf("{\"MBps\": %.1f, \"cpu_s\": %.3f}\n",
			    n / ((MonotonicNs() - t0) / 1e9) / 1e6, CpuSeconds() - c0);
		return 0;
	}
	std::vector<uint64_t> rtt;
	for (uint64_t i = 0; i < n; i++) {
		if (gap_us)
			usleep(gap_us);
		uint64_t t = MonotonicNs();
		if (!s->Full(buf.data(), 64, true) || !s->Full(buf.data(), 64, false))
			return 1;
		rtt.push_back(MonotonicNs() - t);
	}
	std::sort(rtt.begin(), rtt.end());
	std::printf("{\"p50_us\": %.1f, \"p99_us\": %.1f}\n", rtt[rtt.size() / 2] / 1e3,
		    rtt[rtt.size() * 99 / 100] / 1e3);
	return 0;
}

int Usage()
{
	std::fprintf(stderr, "usage: tcp_pair server ADDR:PORT [CA CERT KEY]\n"
			     "       tcp_pair stream ADDR:PORT BYTES\n"
			     "       tcp_pair rr ADDR:PORT COUNT [GAP_US]\n"
			     "       tcp_pair tls ADDR:PORT BYTES CA CERT KEY [PEER_NAME]\n");
	return 2;
}

// The context ftlogd would make from these files.
bool Context(char **files, bool server, std::shared_ptr<TlsContext> *ctx)
{
	Status st = TlsContext::Create(TlsConfig{files[0], files[1], files[2]}, server, ctx);
	if (!st.ok())
		std::fprintf(stderr, "tcp_pair: %s\n", st.msg().c_str());
	return st.ok();
}

} // namespace

int main(int argc, char **argv)
{
	SockAddr a;
	if (argc < 3 || !ParseSockAddr(argv[2], false, &a).ok())
		return Usage();
	std::string mode = argv[1];
	std::shared_ptr<TlsContext> ctx;
	if (mode == "server") {
		if (argc != 3 && argc != 6)
			return Usage();
		if (argc == 6 && !Context(argv + 3, true, &ctx))
			return 1;
		return Server(a, ctx);
	}
	uint64_t n = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 0;
	if (mode == "stream" && argc == 4)
		return Client('s', a, n, nullptr, "", 0);
	if (mode == "rr" && (argc == 4 || argc == 5))
		return Client('r', a, n, nullptr, "",
			      argc == 5 ? static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10)) : 0);
	if (mode == "tls" && (argc == 7 || argc == 8)) {
		if (!Context(argv + 4, false, &ctx))
			return 1;
		return Client('s', a, n, ctx, argc == 8 ? argv[7] : "", 0);
	}
	return Usage();
}
