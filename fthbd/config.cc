// config.cc - parse fthbd.conf (config.h).
#include "config.h"

#include <fstream>
#include <sstream>

#include "base/parse.h"

namespace kvmft::hbd {

using kvmft::Status;
using kvmft::Trim;

namespace {

// "ADDR [dev IFNAME]" -> ADDR, IFNAME
Status AddrDev(const std::string &v, std::string *addr, std::string *dev)
{
	std::istringstream in(v);
	std::string a, kw, d, extra;
	in >> a >> kw >> d >> extra;
	if (a.empty() || !extra.empty() || (!kw.empty() && (kw != "dev" || d.empty())))
		return Status::Error(EINVAL, "expected ADDRESS [dev IFNAME]");
	*addr = a;
	*dev = d;
	return Status::Ok();
}

Status Set(Config *c, const std::string &k, const std::string &v)
{
	std::string a, dev;
	if (k == "name") c->name = v;
	else if (k == "peer_name") c->peer_name = v;
	else if (k == "service") c->service = v;
	else if (k == "ca") c->ca = v;
	else if (k == "cert") c->cert = v;
	else if (k == "key") c->key = v;
	else if (k == "control_socket") c->control_socket = v;
	else if (k == "data_dir") c->data_dir = v;
	else if (k == "safe_queue") c->safe_queue = v;
	else if (k == "app") c->app = v;
	else if (k == "lock_area") c->lock_area = v;
	else if (k == "ping") c->ping.push_back(v);
	else if (k == "host_id") return kvmft::ParseUint(v, 1, 2000, &c->host_id);
	else if (k == "heartbeat_interval_ms") return kvmft::ParseUint(v, 10, 10000, &c->heartbeat_interval_ms);
	else if (k == "timeout_ms") return kvmft::ParseUint(v, 100, 600000, &c->timeout_ms);
	else if (k == "acquire_timeout_ms") return kvmft::ParseUint(v, 100, 600000, &c->acquire_timeout_ms);
	else if (k == "connect_timeout_ms") return kvmft::ParseUint(v, 10, 60000, &c->connect_timeout_ms);
	else if (k == "max_unsafe_mb") return kvmft::ParseUint(v, 1, 65536, &c->max_unsafe_mb);
	else if (k == "mode") {
		if (v != "sync" && v != "async")
			return Status::Error(EINVAL, "mode is sync or async");
		c->mode = v == "sync" ? Mode::kSync : Mode::kAsync;
	} else if (k == "role") {
		if (v != "active" && v != "passive")
			return Status::Error(EINVAL, "role is active or passive");
		c->role = v == "active" ? Role::kActive : Role::kPassive;
	} else if (k == "listen" || k == "peer") {
		Status st = AddrDev(v, &a, &dev);
		if (st.ok())
			st = kvmft::ParseSockAddr(a, false, k == "listen" ? &c->listen : &c->peer);
		if (k == "listen")
			c->listen_dev = dev;
		return st;
	} else if (k == "public_address") {
		Status st = AddrDev(v, &c->public_addr, &c->public_dev);
		if (st.ok() && (c->public_addr.find('/') == std::string::npos || dev.size()))
			return Status::Error(EINVAL, "expected ADDRESS/PREFIX dev IFNAME");
		if (st.ok() && c->public_dev.empty())
			return Status::Error(EINVAL, "public_address needs dev IFNAME");
		return st;
	} else
		return Status::Error(EINVAL, "unknown key \"" + k + "\"");
	return Status::Ok();
}

} // namespace

Status ParseConfig(const std::string &text, Config *c)
{
	std::istringstream in(text);
	std::string line;
	for (int n = 1; std::getline(in, line); n++) {
		line = Trim(line.substr(0, line.find('#')));
		if (line.empty())
			continue;
		size_t eq = line.find('=');
		Status st = eq == std::string::npos
				    ? Status::Error(EINVAL, "expected KEY = VALUE")
				    : Set(c, Trim(line.substr(0, eq)), Trim(line.substr(eq + 1)));
		if (!st.ok())
			return st.Wrap("line " + std::to_string(n));
	}
	const char *missing = c->name.empty()           ? "name"
			      : c->peer_name.empty()    ? "peer_name"
			      : c->ca.empty()           ? "ca"
			      : c->cert.empty()         ? "cert"
			      : c->key.empty()          ? "key"
			      : !c->listen.len          ? "listen"
			      : !c->peer.len            ? "peer"
			      : c->data_dir.empty()     ? "data_dir"
			      : c->safe_queue.empty()   ? "safe_queue"
			      : c->app.empty()          ? "app"
			      : c->public_addr.empty()  ? "public_address"
			      : c->lock_area.empty()    ? "lock_area"
			      : !c->host_id             ? "host_id"
							: nullptr;
	if (missing)
		return Status::Error(EINVAL, std::string("\"") + missing + "\" is required");
	return Status::Ok();
}

Status LoadConfig(const std::string &path, Config *c)
{
	std::ifstream f(path);
	if (!f)
		return Status::Errno("open " + path);
	std::stringstream s;
	s << f.rdbuf();
	return ParseConfig(s.str(), c).Wrap(path);
}

} // namespace kvmft::hbd
