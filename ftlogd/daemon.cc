// daemon.cc - ftlogd's main loop and setup.
#include "daemon.h"

#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "channel/unix_msg.h"

namespace kvmft::logd {

using kvmft::Status;

namespace {

// Refused clients kept open until they read their answer, at most.
constexpr long kMaxRefused = 16;

} // namespace

Daemon::Daemon(Config cfg) : cfg_(std::move(cfg)), events_(cfg_.host_name)
{
	env_.cfg = &cfg_;
	env_.events = &events_;
}

Daemon::~Daemon()
{
	{
		std::lock_guard<std::mutex> g(mu_);
		for (auto &[n, s] : secondaries_)
			s->Stop();
	}
	for (auto &[n, p] : primaries_)
		p->Stop();
	Reap(true);
	acceptor_.reset();
	if (ctl_.valid())
		unlink(cfg_.control_socket.c_str());
}

namespace {

Status ListenUnix(const std::string &path, kvmft::UniqueFd *out)
{
	sockaddr_un a{};
	a.sun_family = AF_UNIX;
	if (path.size() >= sizeof(a.sun_path))
		return Status::Error(ENAMETOOLONG, "control socket path too long: " + path);
	std::memcpy(a.sun_path, path.c_str(), path.size());
	kvmft::UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	if (!fd.valid())
		return Status::Errno("socket");
	// A socket file left by a dead daemon is replaced; a live one is not.
	if (connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0)
		return Status::Error(EADDRINUSE, "another ftlogd listens on " + path);
	unlink(path.c_str());
	mode_t old = umask(0117); // owner and group only: the socket controls FT
	int r = bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a));
	umask(old);
	if (r < 0)
		return Status::Errno("bind " + path);
	if (listen(fd.get(), 16) < 0)
		return Status::Errno("listen " + path);
	*out = std::move(fd);
	return Status::Ok();
}

// control_group: a group name or a numeric gid.
Status ResolveGroup(const std::string &g, gid_t *out)
{
	char *end = nullptr;
	errno = 0;
	unsigned long n = std::strtoul(g.c_str(), &end, 10);
	if (!g.empty() && *end == '\0' && errno == 0 && n < 0xffffffffu) {
		*out = static_cast<gid_t>(n);
		return Status::Ok();
	}
	group gr, *res = nullptr;
	std::vector<char> buf(16384);
	if (getgrnam_r(g.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || !res)
		return Status::Error(ENOENT, "control_group: no group \"" + g + "\"");
	*out = res->gr_gid;
	return Status::Ok();
}

} // namespace

bool Daemon::Authorized(int fd, uid_t *uid, std::string *why)
{
	ucred cr{};
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		*why = std::string("SO_PEERCRED: ") + std::strerror(errno);
		return false;
	}
	*uid = cr.uid;
	if (cr.uid == 0)
		return true;
	if (has_ctl_gid_) {
		if (cr.gid == ctl_gid_)
			return true;
#ifdef SO_PEERGROUPS
		std::vector<gid_t> gs(64);
		for (;;) {
			len = static_cast<socklen_t>(gs.size() * sizeof(gid_t));
			if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, gs.data(), &len) == 0)
				break;
			if (errno != ERANGE || len <= gs.size() * sizeof(gid_t)) {
				len = 0;
				break;
			}
			gs.resize(len / sizeof(gid_t));
		}
		gs.resize(len / sizeof(gid_t));
		if (std::find(gs.begin(), gs.end(), ctl_gid_) != gs.end())
			return true;
#endif
	}
	*why = "uid " + std::to_string(cr.uid) + " is not root" +
	       (has_ctl_gid_ ? " nor in control_group " + cfg_.control_group
			     : std::string(" (no control_group configured)")) +
	       " (pid " + std::to_string(cr.pid) + ")";
	return false;
}

Status Daemon::Init()
{
	kvmft::TlsConfig t{cfg_.ca, cfg_.cert, cfg_.key};
	Status st = kvmft::TlsContext::Create(t, false, &env_.client_tls);
	if (st.ok())
		st = kvmft::TlsContext::Create(t, true, &env_.server_tls);
	if (!st.ok())
		return st;
	if (!cfg_.control_group.empty()) {
		st = ResolveGroup(cfg_.control_group, &ctl_gid_);
		if (!st.ok())
			return st;
		has_ctl_gid_ = true;
	}
	st = ListenUnix(cfg_.control_socket, &ctl_);
	if (!st.ok())
		return st;
	// Mode 0660: the group may connect; who it is is checked per client.
	if (has_ctl_gid_ && chown(cfg_.control_socket.c_str(), static_cast<uid_t>(-1), ctl_gid_) < 0)
		return Status::Errno("chown " + cfg_.control_socket + " to control_group " +
				     cfg_.control_group);
	std::vector<kvmft::UniqueFd> listeners;
	for (const Listen &l : cfg_.listens) {
		kvmft::UniqueFd fd;
		st = kvmft::ListenBound(l.addr, kvmft::SockOpts{l.dev, 0}, &fd);
		if (!st.ok())
			return st;
		listeners.push_back(std::move(fd));
	}
	acceptor_ = std::make_unique<Acceptor>(env_, std::move(listeners));
	st = acceptor_->Start();
	if (!st.ok())
		return st;
	if (!cfg_.metrics_listen.empty()) {
		kvmft::SockAddr a;
		st = kvmft::ParseSockAddr(cfg_.metrics_listen, false, &a);
		if (st.ok())
			st = kvmft::ListenBound(a, kvmft::SockOpts{}, &metrics_);
		if (!st.ok())
			return st.Wrap("metrics_listen");
	}
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGTERM);
	sigaddset(&m, SIGINT);
	sigprocmask(SIG_BLOCK, &m, nullptr);
	signal(SIGPIPE, SIG_IGN);
	sig_.reset(signalfd(-1, &m, SFD_CLOEXEC | SFD_NONBLOCK));
	if (!sig_.valid())
		return Status::Errno("signalfd");
	return Status::Ok();
}

void Daemon::Reap(bool all)
{
	for (auto it = workers_.begin(); it != workers_.end();) {
		if (all || *it->done) {
			it->t.join();
			it = workers_.erase(it);
		} else {
			++it;
		}
	}
}

void Daemon::RemoveEnded()
{
	std::vector<std::unique_ptr<Primary>> ended;
	{
		std::lock_guard<std::mutex> g(mu_);
		for (auto it = primaries_.begin(); it != primaries_.end();) {
			if (it->second->ended()) {
				ended.push_back(std::move(it->second));
				owners_.erase(it->first);
				it = primaries_.erase(it);
			} else {
				++it;
			}
		}
	}
	for (auto &p : ended) {
		p->Stop();
		events_.Emit("session_removed", p->name(),
			     "ended with its VM (wakeup fd hung up), all of its log acknowledged");
	}
}

int Daemon::Run()
{
	events_.Emit("started", "", "host " + cfg_.host_name + ", control " + cfg_.control_socket);
	for (;;) {
		std::vector<pollfd> p;
		p.push_back({sig_.get(), POLLIN, 0});
		p.push_back({events_.wake_fd(), POLLIN, 0});
		p.push_back({ctl_.get(), POLLIN, 0});
		p.push_back({metrics_.valid() ? metrics_.get() : -1, POLLIN, 0});
		p.push_back({acceptor_->ready_fd(), POLLIN, 0});
		size_t first_client = p.size();
		for (auto &c : clients_)
			p.push_back({c->fd.get(), POLLIN, 0});
		if (poll(p.data(), p.size(), 1000) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents) {
			events_.Emit("stopping", "", "signal received");
			return 0;
		}
		if (p[1].revents) {
			uint64_t v;
			ssize_t r = read(events_.wake_fd(), &v, sizeof(v));
			(void)r;
			PushEvents();
		}
		if (p[2].revents) {
			int fd = accept4(ctl_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd >= 0) {
				auto c = std::make_unique<Client>();
				c->fd.reset(fd);
				std::string why;
				if (!Authorized(fd, &c->uid, &why)) {
					kvmft::SendMsg(fd, nlohmann::json{{"ok", false},
									  {"error", "not authorized: " + why}});
					events_.Emit("client_refused", "", why, {{"uid", c->uid}});
					c->refused_until_ns = kvmft::MonotonicNs() + 1000000000ull;
				}
				if (!c->refused_until_ns ||
				    std::count_if(clients_.begin(), clients_.end(), [](auto &x) {
					    return x->refused_until_ns != 0;
				    }) < kMaxRefused)
					clients_.push_back(std::move(c));
			}
		}
		if (p[3].revents)
			ServeMetrics();
		if (p[4].revents)
			ServeReady();
		std::vector<Client *> gone;
		for (size_t i = first_client; i < p.size(); i++) {
			if (!p[i].revents)
				continue;
			Client *c = clients_[i - first_client].get();
			bool close = (p[i].revents & (POLLERR | POLLNVAL)) != 0 || c->refused_until_ns;
			if (!close)
				OnClient(c, &close);
			char drop;
			if (c->refused_until_ns) // drained: closing it then does not reset it
				while (recv(c->fd.get(), &drop, 1, MSG_DONTWAIT | MSG_TRUNC) > 0) {
				}
			if (close)
				gone.push_back(c);
		}
		uint64_t now = kvmft::MonotonicNs();
		std::erase_if(clients_, [&](const std::unique_ptr<Client> &c) {
			return std::find(gone.begin(), gone.end(), c.get()) != gone.end() ||
			       (c->refused_until_ns && now >= c->refused_until_ns);
		});
		Reap(false);
		RemoveEnded();
	}
}

} // namespace kvmft::logd
