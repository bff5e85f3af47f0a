// control.cc - the control socket protocol: one JSON object per
// SOCK_SEQPACKET message, fds with SCM_RIGHTS (Documentation/ftlogd.md).
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "channel/unix_msg.h"
#include "daemon.h"

namespace kvmft::logd {

using kvmft::Status;
using nlohmann::json;

namespace {

json Err(const std::string &m) { return json{{"ok", false}, {"error", m}}; }

// The string field `key` of req, or "" with *err set.
std::string Str(const json &req, const char *key, std::string *err)
{
	auto it = req.find(key);
	if (it == req.end() || !it->is_string()) {
		*err = std::string("\"") + key + "\" (a string) is required";
		return "";
	}
	return it->get<std::string>();
}

} // namespace

bool ValidSessionName(const std::string &s)
{
	if (s.empty() || s.size() > 64)
		return false;
	for (char c : s)
		if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
			return false;
	return true;
}

void Daemon::OnClient(Client *c, bool *close)
{
	json req;
	std::vector<kvmft::UniqueFd> fds;
	Status err;
	kvmft::MsgResult r = kvmft::RecvMsg(c->fd.get(), &req, &fds, &err);
	if (r == kvmft::MsgResult::kAgain)
		return;
	if (r == kvmft::MsgResult::kClosed) {
		*close = true;
		return;
	}
	Reply rep;
	if (r == kvmft::MsgResult::kError) {
		if (err.err() != EMSGSIZE && err.err() != EBADMSG) {
			*close = true;
			return;
		}
		rep.msg = Err("bad request: " + err.msg());
	} else {
		rep = Handle(req, fds, c);
	}
	if (req.is_object() && req.contains("tag"))
		rep.msg["tag"] = req["tag"];
	if (!kvmft::SendMsg(c->fd.get(), rep.msg, rep.fds).ok())
		*close = true;
}

Daemon::Reply Daemon::Handle(const json &req, std::vector<kvmft::UniqueFd> &fds, Client *c)
{
	std::string err;
	std::string cmd = Str(req, "cmd", &err);
	if (!err.empty())
		return {Err(err), {}};
	if (cmd == "ping")
		return {json{{"ok", true}, {"host", cfg_.host_name}, {"protocol", 1}}, {}};
	if (cmd == "register")
		return Register(req, fds, *c);
	if (cmd == "attach")
		return Attach(req, *c);
	if (cmd == "unregister")
		return Unregister(req, *c);
	if (cmd == "list")
		return {json{{"ok", true}, {"host", cfg_.host_name}, {"sessions", AllStats()}}, {}};
	if (cmd == "show") {
		std::string name = Str(req, "session", &err);
		if (!err.empty())
			return {Err(err), {}};
		for (json &s : AllStats())
			if (s["session"] == name)
				return {json{{"ok", true}, {"session", s}}, {}};
		return {Err("no session " + name + " on " + cfg_.host_name), {}};
	}
	if (cmd == "events" || cmd == "monitor") {
		uint64_t after = 0;
		if (req.contains("after")) {
			if (!req["after"].is_number_unsigned())
				return {Err("\"after\" must be an event id"), {}};
			after = req["after"].get<uint64_t>();
		}
		if (cmd == "monitor") {
			c->monitor = true;
			c->last_event = req.contains("after") ? after : events_.last_id();
			return {json{{"ok", true}, {"last_event", c->last_event}}, {}};
		}
		return {json{{"ok", true}, {"events", events_.Since(after)}}, {}};
	}
	return {Err("unknown command \"" + cmd + "\""), {}};
}

bool Daemon::MayUse(const std::string &name, const Client &c, bool claim, std::string *err)
{
	auto it = owners_.find(name);
	if (it == owners_.end()) {
		if (claim)
			owners_[name] = c.uid;
		return true;
	}
	if (c.uid == 0 || it->second == c.uid)
		return true;
	*err = "session " + name + " belongs to uid " + std::to_string(it->second) + ", not uid " +
	       std::to_string(c.uid);
	return false;
}

Daemon::Reply Daemon::Register(const json &req, std::vector<kvmft::UniqueFd> &fds,
			       const Client &c)
{
	std::string err;
	std::string name = Str(req, "session", &err);
	std::string peer = err.empty() ? Str(req, "peer", &err) : "";
	if (!err.empty())
		return {Err(err), {}};
	if (!ValidSessionName(name))
		return {Err("bad session name \"" + name + "\" (use [A-Za-z0-9._-], at most 64)"), {}};
	const Peer *p = cfg_.FindPeer(peer);
	if (!p || p->paths.empty())
		return {Err("no FT logging path to peer \"" + peer + "\" in the configuration"), {}};
	std::string kind = req.value("kind", "memfd");
	kvmft::RingSet rs;
	Status st;
	if (kind == "memfd") {
		if (fds.empty() || fds.size() > 2)
			return {Err("register memfd: pass the ring memfd and its eventfd"), {}};
		st = kvmft::RingSet::MapMemfd(fds[0].get(), fds.size() > 1 ? fds[1].get() : -1, &rs);
	} else if (kind == "kvm_ft") {
		if (fds.size() != 1)
			return {Err("register kvm_ft: pass the kvm_ft session fd"), {}};
		st = kvmft::RingSet::MapSession(fds[0].get(), &rs);
	} else {
		return {Err("unknown ring kind \"" + kind + "\" (memfd or kvm_ft)"), {}};
	}
	if (!st.ok())
		return {Err("session " + name + ": " + st.msg()), {}};
	// The ACK eventfd is ours (non-blocking, so a VMM that never reads
	// it cannot stall the session); the VMM gets it in the reply.
	kvmft::UniqueFd ack_reply(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	kvmft::UniqueFd ack_fd(ack_reply.valid() ? dup(ack_reply.get()) : -1);
	if (!ack_fd.valid())
		return {Err("session " + name + ": eventfd: " + std::strerror(errno)), {}};
	uint32_t rings = rs.size(), bytes = rs.ring(0).size;
	{
		std::lock_guard<std::mutex> g(mu_);
		if (primaries_.count(name) || secondaries_.count(name))
			return {Err("session " + name + " already exists on " + cfg_.host_name), {}};
		auto s = std::make_unique<Primary>(env_, name, p, std::move(rs), std::move(ack_fd));
		s->Start();
		primaries_[name] = std::move(s);
		owners_[name] = c.uid;
	}
	events_.Emit("session_registered", name, "primary, peer " + peer,
		     {{"role", "primary"}, {"peer", peer}, {"rings", rings}});
	Reply rep{json{{"ok", true}, {"session", name}, {"rings", rings}, {"ring_bytes", bytes}},
		  {ack_reply.get()}, {}};
	rep.keep.push_back(std::move(ack_reply));
	return rep;
}

Daemon::Reply Daemon::Attach(const json &req, const Client &c)
{
	std::string err;
	std::string name = Str(req, "session", &err);
	if (!err.empty())
		return {Err(err), {}};
	std::lock_guard<std::mutex> g(mu_);
	auto it = secondaries_.find(name);
	if (it == secondaries_.end())
		return {Err("no secondary session " + name + " on " + cfg_.host_name), {}};
	// The replaying VMM may say which host must feed the session: one
	// fed by another (a configured host, but not its primary's) is
	// refused before the VMM reads a record of it.
	if (req.contains("peer")) {
		std::string want = Str(req, "peer", &err);
		if (!err.empty())
			return {Err(err), {}};
		if (it->second->peer() != want) {
			std::string m = "session " + name + " is fed by host " + it->second->peer() +
					", not " + want;
			events_.Emit("attach_refused", name, m,
				     {{"peer", it->second->peer()}, {"expected", want}});
			return {Err(m), {}};
		}
	}
	if (!MayUse(name, c, true, &err))
		return {Err(err), {}};
	json j = it->second->Stats();
	return {json{{"ok", true}, {"session", name}, {"rings", j["rings"]},
		     {"ring_bytes", j["buffer_size"].get<uint64_t>() / j["rings"].get<uint64_t>()}},
		{it->second->memfd(), it->second->eventfd()}};
}

Daemon::Reply Daemon::Unregister(const json &req, const Client &c)
{
	std::string err;
	std::string name = Str(req, "session", &err);
	if (!err.empty())
		return {Err(err), {}};
	std::unique_ptr<Primary> p;
	std::shared_ptr<Secondary> s;
	{
		std::lock_guard<std::mutex> g(mu_);
		if ((primaries_.count(name) || secondaries_.count(name)) && !MayUse(name, c, false, &err))
			return {Err(err), {}};
		owners_.erase(name);
		if (auto it = primaries_.find(name); it != primaries_.end()) {
			p = std::move(it->second);
			primaries_.erase(it);
		} else if (auto it2 = secondaries_.find(name); it2 != secondaries_.end()) {
			s = it2->second;
			secondaries_.erase(it2);
		} else {
			return {Err("no session " + name + " on " + cfg_.host_name), {}};
		}
	}
	if (p)
		p->Stop();
	if (s)
		s->Stop();
	events_.Emit("session_removed", name, "unregistered");
	return {json{{"ok", true}}, {}};
}

json Daemon::AllStats()
{
	std::lock_guard<std::mutex> g(mu_);
	json a = json::array();
	for (auto &[n, p] : primaries_)
		a.push_back(p->Stats());
	for (auto &[n, s] : secondaries_)
		a.push_back(s->Stats());
	return a;
}

void Daemon::PushEvents()
{
	for (auto &c : clients_) {
		if (!c->monitor)
			continue;
		for (json &e : events_.Since(c->last_event)) {
			c->last_event = e["id"].get<uint64_t>();
			kvmft::SendMsg(c->fd.get(), json{{"event", e}});
		}
	}
}

} // namespace kvmft::logd
