// config.cc - parse ftlogd.conf.
#include "config.h"

#include <fstream>
#include <sstream>

#include "base/parse.h"

namespace kvmft::logd {

using kvmft::Status;
using kvmft::Trim;
using kvmft::ParseUint;

namespace {

std::vector<std::string> Words(const std::string &s)
{
	std::istringstream in(s);
	std::vector<std::string> w;
	std::string x;
	while (in >> x)
		w.push_back(x);
	return w;
}

// "ADDR [dev IFNAME]"
Status ParseEndpoint(const std::vector<std::string> &w, size_t from, size_t to, bool port_opt,
		     kvmft::SockAddr *a, std::string *dev)
{
	if (to - from != 1 && to - from != 3)
		return Status::Error(EINVAL, "expected ADDRESS [dev IFNAME]");
	Status st = kvmft::ParseSockAddr(w[from], port_opt, a);
	if (!st.ok())
		return st;
	if (to - from == 3) {
		if (w[from + 1] != "dev")
			return Status::Error(EINVAL, "expected \"dev\", got \"" + w[from + 1] + "\"");
		*dev = w[from + 2];
	}
	return Status::Ok();
}

// "LOCAL [dev IF] -> PEER:PORT"
Status ParsePath(const std::string &v, Path *p)
{
	auto w = Words(v);
	size_t arrow = 0;
	while (arrow < w.size() && w[arrow] != "->")
		arrow++;
	if (arrow == w.size() || arrow + 2 != w.size())
		return Status::Error(EINVAL, "expected LOCAL_ADDRESS [dev IFNAME] -> PEER_ADDRESS:PORT");
	Status st = ParseEndpoint(w, 0, arrow, true, &p->local, &p->dev);
	if (!st.ok())
		return st;
	st = kvmft::ParseSockAddr(w[arrow + 1], false, &p->peer);
	if (st.ok() && p->local.ss.ss_family != p->peer.ss.ss_family)
		st = Status::Error(EINVAL, "local and peer addresses of different families");
	return st;
}

Status Global(Config *c, const std::string &k, const std::string &v)
{
	if (k == "host_name")
		c->host_name = v;
	else if (k == "host_id")
		return ParseUint(v, 1, 0xffffffffu, &c->host_id);
	else if (k == "control_socket")
		c->control_socket = v;
	else if (k == "control_group")
		c->control_group = v;
	else if (k == "ca")
		c->ca = v;
	else if (k == "cert")
		c->cert = v;
	else if (k == "key")
		c->key = v;
	else if (k == "heartbeat_interval_ms")
		return ParseUint(v, 10, 10000, &c->heartbeat_interval_ms);
	else if (k == "heartbeat_timeout_ms")
		return ParseUint(v, 50, 60000, &c->heartbeat_timeout_ms);
	else if (k == "connect_timeout_ms")
		return ParseUint(v, 50, 60000, &c->connect_timeout_ms);
	else if (k == "frame_bytes")
		return ParseUint(v, 4096, 1u << 20, &c->frame_bytes);
	else if (k == "max_pending_connections")
		return ParseUint(v, 1, 4096, &c->max_pending_connections);
	else if (k == "realtime_priority") {
		c->realtime_priority_set = true;
		return ParseUint(v, 0, 99, &c->realtime_priority);
	}
	else if (k == "metrics_listen")
		c->metrics_listen = v;
	else if (k == "listen") {
		Listen l;
		Status st = ParseEndpoint(Words(v), 0, Words(v).size(), false, &l.addr, &l.dev);
		if (!st.ok())
			return st;
		c->listens.push_back(l);
	} else
		return Status::Error(EINVAL, "unknown key \"" + k + "\"");
	return Status::Ok();
}

Status InPeer(Peer *p, const std::string &k, const std::string &v)
{
	if (k == "fingerprint") {
		p->fingerprint = v;
		return Status::Ok();
	}
	if (k != "path")
		return Status::Error(EINVAL, "unknown key \"" + k + "\" in [peer " + p->name + "]");
	Path path;
	Status st = ParsePath(v, &path);
	if (st.ok())
		p->paths.push_back(path);
	return st;
}

Status Check(const Config &c)
{
	if (c.host_name.empty())
		return Status::Error(EINVAL, "host_name is required");
	if (c.ca.empty() || c.cert.empty() || c.key.empty())
		return Status::Error(EINVAL, "ca, cert and key are required (mutual TLS)");
	if (c.heartbeat_timeout_ms < 2 * c.heartbeat_interval_ms)
		return Status::Error(EINVAL, "heartbeat_timeout_ms must be at least twice "
					     "heartbeat_interval_ms");
	return Status::Ok();
}

} // namespace

std::string Path::str() const
{
	return local.str() + (dev.empty() ? "" : " dev " + dev) + " -> " + peer.str();
}

unsigned EffectivePriority(const Config &c, int cpus)
{
	if (cpus == 1 && !c.realtime_priority_set)
		return 0;
	return c.realtime_priority;
}

const Peer *Config::FindPeer(const std::string &name) const
{
	for (const Peer &p : peers)
		if (p.name == name)
			return &p;
	return nullptr;
}

Status ParseConfig(const std::string &text, const std::string &file, Config *out)
{
	Config c;
	std::istringstream in(text);
	std::string line;
	Peer *peer = nullptr;
	for (int n = 1; std::getline(in, line); n++) {
		std::string where = file + ":" + std::to_string(n);
		size_t hash = line.find('#');
		std::string s = Trim(hash == std::string::npos ? line : line.substr(0, hash));
		if (s.empty())
			continue;
		if (s.front() == '[') {
			auto w = Words(s.substr(1, s.size() - 1 - (s.back() == ']')));
			if (s.back() != ']' || w.size() != 2 || w[0] != "peer")
				return Status::Error(EINVAL, where + ": expected [peer NAME]");
			if (c.FindPeer(w[1]))
				return Status::Error(EINVAL, where + ": peer " + w[1] + " given twice");
			c.peers.push_back(Peer{w[1], "", {}});
			peer = &c.peers.back();
			continue;
		}
		size_t eq = s.find('=');
		if (eq == std::string::npos)
			return Status::Error(EINVAL, where + ": expected KEY = VALUE");
		std::string k = Trim(s.substr(0, eq)), v = Trim(s.substr(eq + 1));
		Status st = peer ? InPeer(peer, k, v) : Global(&c, k, v);
		if (!st.ok())
			return st.Wrap(where);
	}
	Status st = Check(c);
	if (!st.ok())
		return st.Wrap(file);
	*out = std::move(c);
	return Status::Ok();
}

Status LoadConfig(const std::string &file, Config *out)
{
	std::ifstream f(file);
	if (!f)
		return Status::Errno("open " + file);
	std::stringstream ss;
	ss << f.rdbuf();
	return ParseConfig(ss.str(), file, out);
}

} // namespace kvmft::logd
