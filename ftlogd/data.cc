// data.cc - the secondary role's side of the FT logging network: accept,
// authenticate, read HELLO, hand the connection to its session. And the
// opt-in Prometheus text endpoint.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include "channel/unix_msg.h"
#include "daemon.h"

namespace ftlogd {

using kvmft::Frame;
using kvmft::FrameDecoder;
using kvmft::Status;
using nlohmann::json;

void Daemon::AcceptData(int lfd)
{
	kvmft::UniqueFd fd;
	kvmft::SockAddr from;
	kvmft::SockOpts o{"", 2 * cfg_.heartbeat_timeout_ms};
	if (!kvmft::AcceptConn(lfd, o, &fd, &from).ok())
		return;
	auto done = std::make_shared<std::atomic<bool>>(false);
	std::thread t([this, done, f = std::move(fd), from]() mutable {
		ServeData(std::move(f), from);
		*done = true;
	});
	workers_.push_back(Worker{std::move(t), done});
}

namespace {

std::string NormHex(const std::string &in)
{
	std::string s;
	for (char c : in)
		if (c != ':')
			s += static_cast<char>(tolower(static_cast<unsigned char>(c)));
	return s;
}

// A HELLO is a few short fields; anything longer is not one.
constexpr size_t kHelloMaxLen = 4096;

// Reads the first frame within timeout_ms.
Status AwaitHello(Link *l, unsigned timeout_ms, json *hello)
{
	uint64_t deadline = kvmft::MonotonicNs() + timeout_ms * 1000000ull;
	Status st;
	while (kvmft::MonotonicNs() < deadline) {
		bool ready;
		st = l->Pump(-1, 10, &ready);
		if (!st.ok())
			return st;
		Frame f;
		FrameDecoder::Result r = l->Next(&f, &st);
		if (r == FrameDecoder::kError)
			return st;
		if (r == FrameDecoder::kNeedMore)
			continue;
		if (f.hdr.type != kvmft::kFrameHello)
			return Status::Error(EPROTO, std::string("expected HELLO, got ") +
							     kvmft::FrameTypeName(f.hdr.type));
		st = kvmft::ParseJson(reinterpret_cast<const char *>(f.payload), f.hdr.len,
				      kHelloMaxLen, "HELLO", hello);
		return st.ok() ? st : Status::Error(EPROTO, st.msg());
	}
	return Status::Error(ETIMEDOUT, "no HELLO within " + std::to_string(timeout_ms) + " ms");
}

} // namespace

void Daemon::ServeData(kvmft::UniqueFd fd, kvmft::SockAddr from)
{
	auto conn = std::make_unique<kvmft::TlsConn>(env_.server_tls, std::move(fd));
	Status st = conn->Handshake(kvmft::PeerCheck{}, static_cast<int>(cfg_.connect_timeout_ms));
	const Peer *peer = st.ok() ? cfg_.FindPeer(conn->peer_name()) : nullptr;
	if (st.ok() && !peer)
		st = Status::Error(EACCES, "certificate of \"" + conn->peer_name() +
						   "\", not a configured peer");
	if (st.ok() && !peer->fingerprint.empty() && conn->peer_sha256() != NormHex(peer->fingerprint))
		st = Status::Error(EACCES, "certificate of \"" + conn->peer_name() +
						   "\" does not match its pinned fingerprint");
	if (!st.ok()) {
		events_.Emit("peer_rejected", "", from.str() + ": " + st.msg(),
			     {{"from", from.str()}, {"error", st.msg()}});
		return;
	}
	auto l = std::make_unique<Link>(std::move(conn), LinkTimes{cfg_.heartbeat_interval_ms,
								    cfg_.heartbeat_timeout_ms});
	json hello;
	st = AwaitHello(l.get(), cfg_.connect_timeout_ms, &hello);
	std::shared_ptr<Secondary> s;
	if (st.ok())
		s = SecondaryFor(hello, peer->name, &st);
	if (!s) {
		events_.Emit("hello_rejected", "", from.str() + ": " + st.msg(),
			     {{"from", from.str()}, {"peer", peer->name}});
		std::string why = st.msg();
		l->Queue(kvmft::kFrameBye, 0, 0, why.data(), why.size());
		bool ready;
		l->Pump(-1, 0, &ready);
		return;
	}
	s->Serve(std::move(l));
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
	std::lock_guard<std::mutex> g(mu_);
	if (primaries_.count(name)) {
		*err = Status::Error(EEXIST, "session " + name + " is primary on " + cfg_.host_name);
		return nullptr;
	}
	auto it = secondaries_.find(name);
	if (it != secondaries_.end()) {
		if (!it->second->Fits(rings, bytes, peer)) {
			*err = Status::Error(EEXIST, "session " + name + " exists with another "
						     "primary or ring geometry");
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

} // namespace ftlogd
