// accept.cc - accept, authenticate and read HELLO without a thread per
// connection (accept.h).
#include "accept.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "channel/unix_msg.h"

namespace kvmft::logd {

using kvmft::FrameDecoder;
using kvmft::Status;
using kvmft::TlsConn;

namespace {

// A HELLO is a few short fields; anything longer is not one.
constexpr size_t kHelloMaxLen = 4096;

std::string NormHex(const std::string &in)
{
	std::string s;
	for (char c : in)
		if (c != ':')
			s += static_cast<char>(tolower(static_cast<unsigned char>(c)));
	return s;
}

} // namespace

const Peer *AuthorizedPeer(const Config &c, const TlsConn &conn, Status *err)
{
	const Peer *found = nullptr;
	for (const Peer &p : c.peers) {
		if (!conn.PeerNamed(p.name))
			continue;
		if (found) {
			*err = Status::Error(EACCES, "certificate of \"" + conn.peer_name() +
							     "\" names two configured peers, " +
							     found->name + " and " + p.name);
			return nullptr;
		}
		found = &p;
	}
	if (!found) {
		*err = Status::Error(EACCES, "certificate of \"" + conn.peer_name() +
						     "\", not a configured peer");
		return nullptr;
	}
	if (!found->fingerprint.empty() && conn.peer_sha256() != NormHex(found->fingerprint)) {
		*err = Status::Error(EACCES, "certificate of \"" + conn.peer_name() +
						     "\" does not match its pinned fingerprint");
		return nullptr;
	}
	return found;
}

Acceptor::Acceptor(Env env, std::vector<kvmft::UniqueFd> listeners)
	: env_(env), listeners_(std::move(listeners))
{
}

Acceptor::~Acceptor()
{
	stop_ = true;
	if (thread_.joinable())
		thread_.join();
}

Status Acceptor::Start()
{
	wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (!wake_.valid())
		return Status::Errno("eventfd");
	try {
		thread_ = std::thread([this] { Run(); });
	} catch (const std::system_error &e) {
		return Status::Error(e.code().value(), std::string("acceptor thread: ") + e.what());
	}
	return Status::Ok();
}

std::vector<Acceptor::Ready> Acceptor::Take()
{
	uint64_t v;
	ssize_t r = read(wake_.get(), &v, sizeof(v));
	(void)r;
	std::lock_guard<std::mutex> g(mu_);
	return std::move(ready_);
}

void Acceptor::Reject(const Pending &p, const char *type, const Status &why)
{
	nlohmann::json f = {{"from", p.from.str()}, {"error", why.msg()}};
	if (p.peer)
		f["peer"] = p.peer->name;
	env_.events->Emit(type, "", p.from.str() + ": " + why.msg(), f);
}

void Acceptor::Accept(int lfd)
{
	const Config &c = *env_.cfg;
	for (;;) {
		Pending p;
		kvmft::UniqueFd fd;
		if (!kvmft::AcceptConn(lfd, kvmft::SockOpts{"", 2 * c.heartbeat_timeout_ms}, &fd,
				       &p.from).ok())
			return;
		if (pending_.size() >= c.max_pending_connections) {
			refused_++;
			continue; // closed: too many connections not yet authenticated
		}
		p.conn = std::make_unique<TlsConn>(env_.server_tls, std::move(fd));
		p.deadline_ns = kvmft::MonotonicNs() + c.connect_timeout_ms * 1000000ull;
		pending_.push_back(std::move(p));
	}
}

bool Acceptor::Step(Pending *p)
{
	Status st;
	if (p->conn) {
		TlsConn::Io r = p->conn->HandshakeStep(kvmft::PeerCheck{}, &st);
		if (r == TlsConn::kAgain)
			return true;
		if (r == TlsConn::kOk)
			p->peer = AuthorizedPeer(*env_.cfg, *p->conn, &st);
		if (!st.ok()) {
			Reject(*p, "peer_rejected", st);
			return false;
		}
		p->link = std::make_unique<Link>(std::move(p->conn),
						 LinkTimes{env_.cfg->heartbeat_interval_ms,
							   env_.cfg->heartbeat_timeout_ms});
	}
	bool ready;
	st = p->link->Pump(-1, 0, &ready);
	kvmft::Frame f;
	FrameDecoder::Result r = st.ok() ? p->link->Next(&f, &st) : FrameDecoder::kError;
	if (r == FrameDecoder::kNeedMore)
		return true;
	nlohmann::json hello;
	if (r == FrameDecoder::kFrame && f.hdr.type != kvmft::kFrameHello)
		st = Status::Error(EPROTO, std::string("expected HELLO, got ") +
						   kvmft::FrameTypeName(f.hdr.type));
	else if (r == FrameDecoder::kFrame)
		st = kvmft::ParseJson(reinterpret_cast<const char *>(f.payload), f.hdr.len,
				      kHelloMaxLen, "HELLO", &hello);
	if (!st.ok()) {
		Reject(*p, "hello_rejected", st);
		return false;
	}
	std::lock_guard<std::mutex> g(mu_);
	ready_.push_back(Ready{std::move(p->link), p->peer, std::move(hello), p->from});
	uint64_t one = 1;
	ssize_t w = write(wake_.get(), &one, sizeof(one));
	(void)w;
	return false;
}

void Acceptor::Run()
{
	// Threads inherit the daemon's SCHED_FIFO: handshakes with whoever
	// connects get none of it.
	sched_param sp{};
	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
	std::vector<pollfd> p;
	while (!stop_) {
		p.clear();
		for (auto &l : listeners_)
			p.push_back({l.get(), POLLIN, 0});
		uint64_t now = kvmft::MonotonicNs(), next = now + 100000000ull;
		for (Pending &c : pending_) {
			bool out = c.conn ? c.conn->want_write() : c.link->unsent() > 0;
			int fd = c.conn ? c.conn->fd() : c.link->conn().fd();
			p.push_back({fd, static_cast<short>(POLLIN | (out ? POLLOUT : 0)), 0});
			next = std::min(next, c.deadline_ns);
		}
		int timeout = next > now ? static_cast<int>((next - now) / 1000000 + 1) : 0;
		if (poll(p.data(), p.size(), timeout) < 0 && errno != EINTR)
			return;
		now = kvmft::MonotonicNs();
		size_t i = listeners_.size();
		for (auto it = pending_.begin(); it != pending_.end(); i++) {
			bool keep = true;
			if (p[i].revents)
				keep = Step(&*it);
			if (keep && now >= it->deadline_ns) {
				Reject(*it, it->conn ? "peer_rejected" : "hello_rejected",
				       Status::Error(ETIMEDOUT, it->conn ? "TLS handshake timed out"
									 : "no HELLO in time"));
				keep = false;
			}
			it = keep ? std::next(it) : pending_.erase(it);
		}
		for (size_t k = 0; k < listeners_.size(); k++)
			if (p[k].revents)
				Accept(listeners_[k].get());
	}
}

} // namespace kvmft::logd
