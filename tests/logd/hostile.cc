// ftlog-hostile - test tool: a hostile client or peer of ftlogd. Each
// command makes one attack and returns; tests/logd/hostile.sh watches the
// daemon meanwhile (alive, thread count, RSS, CPU, an honest session's
// ACKs).
//
//   ftlog-hostile idle ADDR:PORT N HOLD_MS   N TCP connections that never speak
//   ftlog-hostile flood CA CERT KEY PEER ADDR:PORT SESSION SECONDS
//                                            HELLO, then PINGs, never reading
//   ftlog-hostile shrink SOCKET PEER SESSION register an unsealed memfd ring,
//                                            then shrink it to 0 bytes
//   ftlog-hostile hup SOCKET PEER SESSION    register a ring whose wakeup fd
//                                            then hangs up (a pipe)
//   ftlog-hostile nested SOCKET DEPTH        a ping whose tag nests DEPTH deep
//   ftlog-hostile feed CA CERT KEY PEER ADDR:PORT SESSION HOST
//                                            HELLO for SESSION naming HOST,
//                                            prints the answer (WELCOME or BYE)
//   ftlog-hostile ask SOCKET JSON            one control request, prints the
//                                            reply or the error
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "channel/net.h"
#include "channel/tls.h"
#include "channel/unix_msg.h"
#include "link.h"
#include "logd_client/request.h"
#include "ring/ring.h"

using namespace kvmft;
using nlohmann::json;

namespace {

int Idle(const std::string &addr, int n, int hold_ms)
{
	rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	SockAddr a;
	if (!ParseSockAddr(addr, false, &a).ok())
		return 2;
	std::vector<UniqueFd> fds;
	int opened = 0;
	for (int i = 0; i < n; i++) {
		UniqueFd fd(socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
		if (!fd.valid())
			break;
		if (connect(fd.get(), reinterpret_cast<const sockaddr *>(&a.ss), a.len) < 0 &&
		    errno != EINPROGRESS)
			continue;
		opened++;
		fds.push_back(std::move(fd));
	}
	std::printf("idle: %d connections opened\n", opened);
	std::fflush(stdout);
	usleep(static_cast<useconds_t>(hold_ms) * 1000);
	return 0;
}

// argv: CA CERT KEY PEER ADDR:PORT. A TLS connection to PEER, as a
// primary makes it.
Status ConnectPeer(char **argv, std::unique_ptr<TlsConn> *out)
{
	std::shared_ptr<TlsContext> tls;
	SockAddr peer;
	Status st = TlsContext::Create(TlsConfig{argv[0], argv[1], argv[2]}, false, &tls);
	if (st.ok())
		st = ParseSockAddr(argv[4], false, &peer);
	UniqueFd fd;
	if (st.ok())
		st = ConnectBound(SockAddr(), peer, SockOpts{}, 2000, &fd);
	*out = std::make_unique<TlsConn>(tls, std::move(fd));
	if (st.ok())
		st = (*out)->Handshake(PeerCheck{argv[3], ""}, 2000);
	return st;
}

int Flood(char **argv)
{
	std::unique_ptr<TlsConn> conn;
	Status st = ConnectPeer(argv, &conn);
	if (!st.ok()) {
		std::fprintf(stderr, "flood: %s\n", st.msg().c_str());
		return 1;
	}
	// Small receive buffer: the daemon's answers back up at once.
	int small = 4096;
	setsockopt(conn->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	kvmft::logd::Link l(std::move(conn), kvmft::logd::LinkTimes{100, 60000});
	std::string h = json{{"session", argv[5]}, {"host", "a"}, {"rings", 1},
			     {"ring_bytes", 65536}}.dump();
	l.Queue(kFrameHello, 0, 0, h.data(), h.size());
	uint64_t end = MonotonicNs() + std::stoull(argv[6]) * 1000000000ull, sent = 0;
	PingPayload pp{};
	while (MonotonicNs() < end) {
		while (l.unsent() < (1u << 20)) {
			l.Queue(kFramePing, 0, ++sent, &pp, sizeof(pp));
		}
		st = l.Send();
		if (!st.ok()) {
			std::printf("flood: the daemon closed the connection after %llu PINGs: %s\n",
				    static_cast<unsigned long long>(sent), st.msg().c_str());
			return 0;
		}
		pollfd p{l.conn().fd(), POLLOUT, 0};
		poll(&p, 1, 10);
	}
	std::printf("flood: %llu PINGs sent\n", static_cast<unsigned long long>(sent));
	return 0;
}

Status Register(const char *socket, const char *peer, const char *session, int memfd, int wake,
		UniqueFd *ctl)
{
	Status st = ConnectUnix(socket, ctl);
	json rep;
	if (st.ok())
		st = kvmft::logd::Request(ctl->get(), {{"cmd", "register"}, {"session", session},
						  {"peer", peer}, {"kind", "memfd"}},
				     {memfd, wake}, &rep);
	return st;
}

int Shrink(char **argv)
{
	// A ring laid out as CreateMemfd does, in a memfd without seals.
	RingSet model;
	Status st = RingSet::CreateMemfd(1, 65536, &model);
	UniqueFd raw(memfd_create("hostile-ring", MFD_CLOEXEC));
	off_t size = static_cast<off_t>(RingStride(65536));
	std::vector<char> copy(static_cast<size_t>(size));
	if (!st.ok() || !raw.valid() || pread(model.fd(), copy.data(), copy.size(), 0) != size ||
	    write(raw.get(), copy.data(), copy.size()) != size)
		return 2;
	UniqueFd ctl;
	st = Register(argv[0], argv[1], argv[2], raw.get(), model.event_fd(), &ctl);
	if (!st.ok()) {
		std::printf("shrink: refused: %s\n", st.msg().c_str());
		return 0;
	}
	std::printf("shrink: an unsealed memfd was registered; shrinking it\n");
	std::fflush(stdout);
	if (ftruncate(raw.get(), 0) < 0)
		return 2;
	sleep(1);
	return 1;
}

int Hup(char **argv)
{
	RingSet rs;
	int p[2];
	if (!RingSet::CreateMemfd(1, 65536, &rs).ok() || pipe2(p, O_CLOEXEC) < 0)
		return 2;
	UniqueFd r(p[0]), w(p[1]);
	UniqueFd ctl;
	Status st = Register(argv[0], argv[1], argv[2], rs.fd(), r.get(), &ctl);
	if (!st.ok()) {
		std::fprintf(stderr, "hup: register: %s\n", st.msg().c_str());
		return 1;
	}
	// Our end goes: the daemon's copy of the read end now polls POLLHUP.
	w.reset();
	r.reset();
	std::printf("hup: registered, wakeup fd hung up\n");
	return 0;
}

int Nested(const char *socket, int depth)
{
	UniqueFd ctl;
	Status st = ConnectUnix(socket, &ctl);
	if (!st.ok())
		return 2;
	std::string m = "{\"cmd\": \"ping\", \"tag\": " + std::string(static_cast<size_t>(depth), '[') +
			std::string(static_cast<size_t>(depth), ']') + "}";
	if (send(ctl.get(), m.data(), m.size(), 0) != static_cast<ssize_t>(m.size()))
		return 2;
	pollfd p{ctl.get(), POLLIN, 0};
	std::vector<char> buf(kMsgMaxLen + 1);
	ssize_t n = poll(&p, 1, 5000) == 1 ? recv(ctl.get(), buf.data(), buf.size(), 0) : -1;
	if (n <= 0) {
		std::printf("nested: no answer\n");
		return 1;
	}
	std::printf("nested: %.200s\n", buf.data());
	return 0;
}

int Feed(char **argv)
{
	std::unique_ptr<TlsConn> conn;
	Status st = ConnectPeer(argv, &conn);
	if (!st.ok()) {
		std::fprintf(stderr, "feed: %s\n", st.msg().c_str());
		return 1;
	}
	kvmft::logd::Link l(std::move(conn), kvmft::logd::LinkTimes{100, 5000});
	std::string h = json{{"session", argv[5]}, {"host", argv[6]}, {"rings", 1},
			     {"ring_bytes", 65536}}.dump();
	l.Queue(kFrameHello, 0, 0, h.data(), h.size());
	for (int i = 0; i < 300; i++) {
		bool ready;
		Status pumped = l.Pump(-1, 10, &ready);
		Frame f;
		// A BYE may come with the end of the connection: decode first.
		FrameDecoder::Result r = l.Next(&f, &st);
		if (r == FrameDecoder::kNeedMore && pumped.ok())
			continue;
		if (r != FrameDecoder::kFrame) {
			if (st.ok())
				st = pumped;
			break;
		}
		std::string text(reinterpret_cast<const char *>(f.payload), f.hdr.len);
		std::printf("feed %s as %s: %s: %s\n", argv[5], argv[6],
			    f.hdr.type == kFrameWelcome ? "welcome" : "refused", text.c_str());
		return 0;
	}
	std::printf("feed %s as %s: no answer: %s\n", argv[5], argv[6], st.msg().c_str());
	return 0;
}

int Ask(const char *socket, const char *req)
{
	UniqueFd ctl;
	json rep;
	Status st = ConnectUnix(socket, &ctl);
	if (st.ok())
		st = kvmft::logd::Request(ctl.get(), json::parse(req), {}, &rep);
	std::printf("%s\n", st.ok() ? rep.dump().c_str() : ("error: " + st.msg()).c_str());
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	std::string cmd = argc > 1 ? argv[1] : "";
	if (cmd == "idle" && argc == 5)
		return Idle(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
	if (cmd == "flood" && argc == 9)
		return Flood(argv + 2);
	if (cmd == "shrink" && argc == 5)
		return Shrink(argv + 2);
	if (cmd == "hup" && argc == 5)
		return Hup(argv + 2);
	if (cmd == "nested" && argc == 4)
		return Nested(argv[2], std::atoi(argv[3]));
	if (cmd == "feed" && argc == 9)
		return Feed(argv + 2);
	if (cmd == "ask" && argc == 4)
		return Ask(argv[2], argv[3]);
	std::fprintf(stderr, "usage: see the head of tests/logd/hostile.cc\n");
	return 2;
}
