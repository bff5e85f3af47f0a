// daemon.h - ftlogd's main loop: the control socket (Documentation/
// ftlogd.md, "Control socket"), the FT logging listeners (secondary
// role), the session registry, the event stream and the opt-in
// Prometheus endpoint. One thread runs the loop; each primary session and
// each authenticated FT logging connection has its own thread; one more
// (accept.h) authenticates the incoming ones.
#pragma once

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "accept.h"
#include "config.h"
#include "events.h"
#include "primary.h"
#include "secondary.h"

namespace kvmft::logd {

class Daemon {
public:
	explicit Daemon(Config cfg);
	~Daemon();
	kvmft::Status Init();
	// Runs until SIGTERM or SIGINT. Returns the exit code.
	int Run();

private:
	struct Client {
		kvmft::UniqueFd fd;
		uid_t uid = 0; // SO_PEERCRED at accept
		// Not authorized: told so at accept, closed after its first
		// message (so that it can read the answer) or at this time.
		uint64_t refused_until_ns = 0;
		bool monitor = false;
		uint64_t last_event = 0;
	};
	struct Reply {
		nlohmann::json msg;
		std::vector<int> fds;
		std::vector<kvmft::UniqueFd> keep; // fds owned until sent
	};
	struct Worker {
		std::thread t;
		std::shared_ptr<std::atomic<bool>> done;
	};

	// control.cc
	void OnClient(Client *c, bool *close);
	Reply Handle(const nlohmann::json &req, std::vector<kvmft::UniqueFd> &fds, Client *c);
	Reply Register(const nlohmann::json &req, std::vector<kvmft::UniqueFd> &fds,
		       const Client &c);
	Reply Attach(const nlohmann::json &req, const Client &c);
	Reply Unregister(const nlohmann::json &req, const Client &c);
	// A new client on the control socket: root, or in control_group
	// (primary or supplementary group). Else *why says who was refused.
	bool Authorized(int fd, uid_t *uid, std::string *why);
	// With mu_ held: may c act on session name? An unowned session
	// becomes c's when claim is set.
	bool MayUse(const std::string &name, const Client &c, bool claim, std::string *err);
	nlohmann::json AllStats();
	// data.cc
	void ServeReady();
	std::shared_ptr<Secondary> SecondaryFor(const nlohmann::json &hello, const std::string &peer,
						 kvmft::Status *err);
	void ServeMetrics();

	void PushEvents();
	void Reap(bool all);
	// Removes primaries that ended with their VM (Primary::ended()).
	void RemoveEnded();

	Config cfg_;
	EventLog events_;
	Env env_;
	kvmft::UniqueFd ctl_, sig_, metrics_;
	gid_t ctl_gid_ = 0;   // control_group, resolved
	bool has_ctl_gid_ = false;
	std::unique_ptr<Acceptor> acceptor_;
	std::vector<std::unique_ptr<Client>> clients_;
	std::list<Worker> workers_;

	std::mutex mu_; // guards the registries
	std::map<std::string, std::unique_ptr<Primary>> primaries_;
	std::map<std::string, std::shared_ptr<Secondary>> secondaries_;
	// The uid a session belongs to: who registered it (primary) or first
	// attached to it (secondary). Root may act on any session.
	std::map<std::string, uid_t> owners_;
};

// True for names made of [A-Za-z0-9._-], 1..64 characters.
bool ValidSessionName(const std::string &s);

} // namespace kvmft::logd
