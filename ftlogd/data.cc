// data.cc - the secondary role's side of the FT logging network: hand an
// authenticated connection that said HELLO (accept.h) to its session. And
// the opt-in Prometheus text endpoint.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <system_error>

#include "daemon.h"

namespace kvmft::logd {

using kvmft::Status;
using nlohmann::json;

void Daemon::ServeReady()
{
	for (Acceptor::Ready &r : acceptor_->Take()) {
		Status st;
		std::shared_ptr<Secondary> s = SecondaryFor(r.hello, r.peer->name, &st);
		if (s) {
			auto done = std::make_shared<std::atomic<bool>>(false);
			try {
				std::thread t([s, done, l = std::move(r.link)]() mutable {
					s->Serve(std::move(l));
					*done = true;
				});
				workers_.push_back(Worker{std::move(t), done});
				continue;
			} catch (const std::system_error &e) {
				st = Status::Error(e.code().value(),
						   std::string("no thread for the session: ") + e.what());
			}
		}
		events_.Emit("hello_rejected", "", r.from.str() + ": " + st.msg(),
			     {{"from", r.from.str()}, {"peer", r.peer->name}});
		std::string why = st.msg();
		r.link->Queue(kvmft::kFrameBye, 0, 0, why.data(), why.size());
		bool ready;
		r.link->Pump(-1, 0, &ready);
	}
}

std::shared_ptr<Secondary> Daemon::SecondaryFor(const json &h, const std::string &peer,
						 Status *err)
{
	auto u32 = [&](const char *k) -> uint32_t {
		auto it = h.find(k);
		if (it == h.end() || !it->is_number_unsigned() || it->get<uint64_t>() > 0xffffffffu)
			return 0;
		return it->get<uint32_t>();
	};
	std::string name = h.value("session", "");
	uint32_t rings = u32("rings"), bytes = u32("ring_bytes");
	if (!ValidSessionName(name) || rings == 0 || rings > 64 || !kvmft::RingSizeValid(bytes)) {
		*err = Status::Error(EPROTO, "HELLO: bad session, rings or ring_bytes");
		return nullptr;
	}
	// The host a HELLO speaks for is the one its certificate was
	// authorized as (accept.h), not whatever it claims.
	auto host = h.find("host");
	if (host == h.end() || !host->is_string() || host->get<std::string>() != peer) {
		*err = Status::Error(EACCES, "HELLO for session " + name + " names host \"" +
						     (host != h.end() && host->is_string()
							      ? host->get<std::string>()
							      : std::string()) +
						     "\", but the certificate is " + peer + "'s");
		return nullptr;
	}
	std::lock_guard<std::mutex> g(mu_);
	if (primaries_.count(name)) {
		*err = Status::Error(EEXIST, "session " + name + " is primary on " + cfg_.host_name);
		return nullptr;
	}
	auto it = secondaries_.find(name);
	if (it != secondaries_.end()) {
		if (it->second->peer() != peer) {
			*err = Status::Error(EACCES, "session " + name + " is bound to host " +
							     it->second->peer() + ", not " + peer);
			return nullptr;
		}
		if (!it->second->Fits(rings, bytes, peer)) {
			*err = Status::Error(EEXIST, "session " + name + " exists with another "
						     "ring geometry");
			return nullptr;
		}
		return it->second;
	}
	auto s = std::make_shared<Secondary>(env_, name, peer);
	*err = s->Init(rings, bytes);
	if (!err->ok())
		return nullptr;
	secondaries_[name] = s;
	events_.Emit("session_registered", name, "secondary, primary on " + peer,
		     {{"role", "secondary"}, {"peer", peer}, {"rings", rings}});
	return s;
}

namespace {

void Metric(std::ostringstream &o, const char *name, const char *help, const json &all,
	    const std::function<const json *(const json &)> &get)
{
	o << "# HELP kvmft_" << name << " " << help << "\n# TYPE kvmft_" << name << " gauge\n";
	for (const json &s : all) {
		const json *v = get(s);
		if (v && v->is_number())
			o << "kvmft_" << name << "{session=\"" << s["session"].get<std::string>()
			  << "\",role=\"" << s["role"].get<std::string>() << "\"} " << v->dump()
			  << "\n";
	}
}

} // namespace

void Daemon::ServeMetrics()
{
	kvmft::UniqueFd fd(accept4(metrics_.get(), nullptr, nullptr, SOCK_CLOEXEC));
	if (!fd.valid())
		return;
	pollfd p{fd.get(), POLLIN, 0};
	char req[2048];
	if (poll(&p, 1, 200) <= 0 || read(fd.get(), req, sizeof(req)) <= 0)
		return;
	json all = AllStats();
	std::ostringstream o;
	auto field = [](const char *k) {
		return [k](const json &s) { return s.contains(k) ? &s[k] : nullptr; };
	};
	auto sub = [](const char *k, const char *q) {
		return [k, q](const json &s) { return s.contains(k) ? &s[k][q] : nullptr; };
	};
	Metric(o, "log_bandwidth_bytes_per_second", "FT log bytes per second", all,
	       field("log_bandwidth_Bps"));
	Metric(o, "vlockstep_interval_seconds", "Secondary lag behind the primary", all,
	       field("vlockstep_interval_s"));
	Metric(o, "ack_latency_p50_microseconds", "ACK latency, median", all,
	       sub("ack_latency_us", "p50"));
	Metric(o, "ack_latency_p99_microseconds", "ACK latency, 99th percentile", all,
	       sub("ack_latency_us", "p99"));
	Metric(o, "log_bytes_sent", "FT log bytes shipped", all, field("bytes_sent"));
	Metric(o, "log_bytes_stored", "FT log bytes stored", all, field("bytes_stored"));
	Metric(o, "reconnects", "FT logging reconnects", all, field("reconnects"));
	Metric(o, "log_buffer_used_bytes", "Log ring bytes in use", all, field("buffer_used"));
	Metric(o, "outputs_held", "Guest outputs waiting for their ACK (output rule)", all,
	       field("outputs_held"));
	Metric(o, "outputs_released", "Guest outputs released after their ACK", all,
	       field("outputs_released"));
	Metric(o, "output_hold_time_microseconds", "Mean hold time of released outputs", all,
	       field("hold_time_us"));
	std::string body = o.str();
	std::string resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			   "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
	ssize_t w = write(fd.get(), resp.data(), resp.size());
	(void)w;
}

} // namespace kvmft::logd
