// session.cc - `ftctl session` and `ftctl monitor`: FT logging sessions
// and the event stream of the local ftlogd, over its control socket
// (Documentation/ftlogd.md, "Control socket").
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "ring/ring.h"

#include "channel/unix_msg.h"
#include "ftctl.h"
#include "print.h"

using nlohmann::json;

namespace kvmft::ctl {

namespace {

void SessionUsage(FILE *f)
{
	std::fprintf(f, "Usage: ftctl session { list | show NAME } [ socket PATH ]\n"
			"       ftctl session register NAME pid PID peer HOST [ vcpus N ] [ socket PATH ]\n"
			"       ftctl session unregister NAME [ socket PATH ]\n"
			"       ftctl session events [ after ID ] [ socket PATH ]\n"
			"       ftctl monitor [ count N ] [ timeout SECONDS ] [ socket PATH ]\n"
			"PATH defaults to $FTLOGD_SOCKET or /run/ftlogd/ftlogd.sock\n");
}

struct Conn {
	kvmft::UniqueFd fd;
	std::string err;
};

// "word VALUE" pairs after the command; unknown words are errors.
bool Pairs(const Args &a, size_t from, std::map<std::string, std::string> *kv, std::string *bad)
{
	for (size_t i = from; i < a.size(); i += 2) {
		const char *keys[] = {"socket", "after", "count", "timeout", "pid", "peer", "vcpus"};
		std::string key;
		for (const char *k : keys)
			if (Matches(a[i], k))
				key = k;
		if (key.empty() || i + 1 >= a.size()) {
			*bad = a[i];
			return false;
		}
		(*kv)[key] = a[i + 1];
	}
	return true;
}

int Ask(const Options &o, const std::string &sock, const json &req, json *rep)
{
	return AskFtlogd(o, sock, req, {}, rep);
}

double Num(const json &s, const char *k, const char *sub = nullptr)
{
	const json *v = s.contains(k) ? &s[k] : nullptr;
	if (v && sub)
		v = v->contains(sub) ? &(*v)[sub] : nullptr;
	return v && v->is_number() ? v->get<double>() : 0;
}

void PrintSession(const Options &o, const json &s)
{
	if (o.json) {
		PrintJson(o, s);
		return;
	}
	Record r(o);
	r.Str("session", "{} ", s.value("session", ""));
	r.Str("role", "role {} ", s.value("role", ""));
	r.Str("state", "state {} ", s.value("state", ""));
	r.Str("peer", "peer {} ", s.value("peer", ""));
	if (s.value("path", "") != "")
		r.Str("path", "path \"{}\" ", s.value("path", ""));
	r.Emit();
	Record d(o);
	d.Text("    ");
	d.Num("bw", "log bandwidth {:.0f} B/s ", Num(s, "log_bandwidth_Bps"));
	if (s.value("role", "") == "primary") {
		d.Num("lag", "vlockstep {:.6f} s ", Num(s, "vlockstep_interval_s"));
		d.Num("p50", "ack p50 {:.1f} us ", Num(s, "ack_latency_us", "p50"));
		d.Num("p99", "p99 {:.1f} us ", Num(s, "ack_latency_us", "p99"));
		d.Num("rtt", "rtt {:.1f} us ", Num(s, "rtt_us"));
		d.Num("rec", "records {:.0f} ", Num(s, "records_sent"));
		d.Num("bytes", "bytes {:.0f} ", Num(s, "bytes_sent"));
		d.Num("rc", "reconnects {:.0f} ", Num(s, "reconnects"));
		d.Num("held", "outputs held {:.0f} ", Num(s, "outputs_held"));
		d.Num("released", "released {:.0f} ", Num(s, "outputs_released"));
		d.Num("hold", "hold {:.1f} us ", Num(s, "hold_time_us"));
	} else {
		d.Num("rec", "records {:.0f} ", Num(s, "records_stored"));
		d.Num("bytes", "bytes {:.0f} ", Num(s, "bytes_stored"));
		d.Num("rej", "rejected {:.0f} ", Num(s, "frames_rejected"));
	}
	d.Num("buf", "buffer {:.0f}", Num(s, "buffer_used"));
	d.Num("bufsz", "/{:.0f} ", Num(s, "buffer_size"));
	d.Emit();
	if (s.contains("last_error") && o.stats)
		std::printf("    last error: %s\n", s["last_error"].get<std::string>().c_str());
}

void PrintEvent(const Options &o, const json &e)
{
	if (o.json) {
		PrintJson(o, e);
		return;
	}
	std::printf("%s %s %s%s%s: %s\n", e.value("time", "").c_str(), e.value("host", "").c_str(),
		    e.value("session", "").c_str(), e.contains("session") ? " " : "",
		    e.value("type", "").c_str(), e.value("msg", "").c_str());
	std::fflush(stdout);
}

std::string SocketPath(const std::map<std::string, std::string> &kv)
{
	return kv.count("socket") ? kv.at("socket") : DefaultSocket();
}

// Capture a running VM with kvm_ft.ko and have ftlogd ship its kernel
// log as session NAME. The session stays registered after we exit.
int Register(const Options &o, const std::string &name, std::map<std::string, std::string> &kv)
{
	if (!kv.count("pid") || !kv.count("peer"))
		return Fail(o, EXIT_USAGE, "register needs pid PID and peer HOST");
	char *end = nullptr;
	unsigned long pid = std::strtoul(kv["pid"].c_str(), &end, 10);
	unsigned long vcpus = 8;
	if (!pid || *end || pid > UINT32_MAX)
		return Fail(o, EXIT_USAGE, "bad pid \"" + kv["pid"] + "\"");
	if (kv.count("vcpus")) {
		vcpus = std::strtoul(kv["vcpus"].c_str(), &end, 10);
		if (!vcpus || *end || vcpus > 1024)
			return Fail(o, EXIT_USAGE, "bad vcpus \"" + kv["vcpus"] + "\"");
	}
	int fd = -1;
	if (int rc = AttachPid(o, static_cast<uint32_t>(pid), static_cast<uint32_t>(vcpus), &fd))
		return rc;
	kvmft::UniqueFd session(fd);
	json rep;
	std::vector<int> rfds;
	int rc = AskFtlogd(o, SocketPath(kv), {{"cmd", "register"}, {"session", name},
			   {"peer", kv["peer"]}, {"kind", "kvm_ft"}}, {session.get()}, &rep, &rfds);
	for (int r : rfds)
		close(r); // the ACK eventfd: for VMMs that hold outputs
	if (rc)
		return rc;
	if (o.json)
		PrintJson(o, rep);
	else
		std::printf("registered %s: pid %lu, %u rings of %u bytes, peer %s\n", name.c_str(),
			    pid, rep.value("rings", 0u), rep.value("ring_bytes", 0u),
			    kv["peer"].c_str());
	return EXIT_OK;
}

} // namespace

std::string DefaultSocket()
{
	const char *env = std::getenv("FTLOGD_SOCKET");
	return env && *env ? env : "/run/ftlogd/ftlogd.sock";
}

int AskFtlogd(const Options &o, const std::string &sock, const json &req,
	      const std::vector<int> &fds, json *rep, std::vector<int> *rfds, std::string *why)
{
	auto fail = [&](int code, const std::string &msg) {
		if (!why)
			return Fail(o, code, msg);
		*why = msg;
		return code;
	};
	kvmft::UniqueFd fd;
	kvmft::Status st = kvmft::ConnectUnix(sock, &fd);
	if (!st.ok())
		return fail(EXIT_UNAVAIL, "ftlogd is not reachable: " + st.msg());
	st = kvmft::SendMsg(fd.get(), req, fds);
	std::vector<kvmft::UniqueFd> got;
	// A client ftlogd does not authorize gets one answer and is closed.
	if (!st.ok() && (st.err() == EPIPE || st.err() == ECONNRESET))
		st = kvmft::Status::Ok();
	if (st.ok() && kvmft::RecvMsg(fd.get(), rep, &got, &st) != kvmft::MsgResult::kMsg && st.ok())
		st = kvmft::Status::Error(ECONNRESET, "ftlogd closed the connection");
	if (!st.ok())
		return fail(EXIT_ERROR, st.msg());
	if (!rep->value("ok", false))
		return fail(EXIT_ERROR, rep->value("error", "request failed"));
	if (rfds)
		for (kvmft::UniqueFd &f : got)
			rfds->push_back(f.release());
	return EXIT_OK;
}

int DoSession(const Options &o, const Args &a)
{
	if (a.empty() || Matches(a[0], "help")) {
		SessionUsage(a.empty() ? stderr : stdout);
		return a.empty() ? EXIT_USAGE : EXIT_OK;
	}
	bool show = Matches(a[0], "show");
	bool named = show || a[0] == "register" || a[0] == "unregister";
	size_t from = named && a.size() > 1 ? 2 : 1;
	std::map<std::string, std::string> kv;
	std::string bad;
	if (!Pairs(a, from, &kv, &bad))
		return Fail(o, EXIT_USAGE, "unexpected \"" + bad + "\", try \"ftctl session help\"");
	json rep;
	int rc;
	if (Matches(a[0], "list") || (show && a.size() == 1)) {
		if ((rc = Ask(o, SocketPath(kv), {{"cmd", "list"}}, &rep)))
			return rc;
		if (o.json)
			PrintJson(o, rep["sessions"]);
		else
			for (const json &s : rep["sessions"])
				PrintSession(o, s);
		return EXIT_OK;
	}
	if (show) {
		if ((rc = Ask(o, SocketPath(kv), {{"cmd", "show"}, {"session", a[1]}}, &rep)))
			return rc;
		PrintSession(o, rep["session"]);
		return EXIT_OK;
	}
	if (a[0] == "register" || a[0] == "unregister") {
		if (a.size() < 2)
			return Fail(o, EXIT_USAGE, a[0] + " needs a session NAME");
		if (a[0] == "register")
			return Register(o, a[1], kv);
		if ((rc = Ask(o, SocketPath(kv), {{"cmd", "unregister"}, {"session", a[1]}}, &rep)))
			return rc;
		if (!o.json)
			std::printf("unregistered %s\n", a[1].c_str());
		return EXIT_OK;
	}
	if (Matches(a[0], "events")) {
		json req = {{"cmd", "events"}};
		if (kv.count("after"))
			req["after"] = std::strtoull(kv["after"].c_str(), nullptr, 10);
		if ((rc = Ask(o, SocketPath(kv), req, &rep)))
			return rc;
		for (const json &e : rep["events"])
			PrintEvent(o, e);
		return EXIT_OK;
	}
	return Fail(o, EXIT_USAGE, "unknown command \"" + a[0] + "\", try \"ftctl session help\"");
}

int DoMonitor(const Options &o, const Args &a)
{
	if (!a.empty() && Matches(a[0], "help")) {
		SessionUsage(stdout);
		return EXIT_OK;
	}
	std::map<std::string, std::string> kv;
	std::string bad;
	if (!Pairs(a, 0, &kv, &bad))
		return Fail(o, EXIT_USAGE, "unexpected \"" + bad + "\", try \"ftctl monitor help\"");
	long count = kv.count("count") ? std::strtol(kv["count"].c_str(), nullptr, 10) : -1;
	double timeout = kv.count("timeout") ? std::strtod(kv["timeout"].c_str(), nullptr) : -1;
	kvmft::UniqueFd fd;
	kvmft::Status st = kvmft::ConnectUnix(SocketPath(kv), &fd);
	if (!st.ok())
		return Fail(o, EXIT_UNAVAIL, "ftlogd is not reachable: " + st.msg());
	st = kvmft::SendMsg(fd.get(), {{"cmd", "monitor"}});
	if (!st.ok())
		return Fail(o, EXIT_ERROR, st.msg());
	int64_t left_ms = timeout < 0 ? -1 : static_cast<int64_t>(timeout * 1000);
	while (count != 0) {
		pollfd p{fd.get(), POLLIN, 0};
		uint64_t t0 = kvmft::MonotonicNs();
		int r = poll(&p, 1, static_cast<int>(left_ms));
		if (r == 0)
			return EXIT_TIMEOUT;
		if (left_ms >= 0)
			left_ms = std::max<int64_t>(0, left_ms - static_cast<int64_t>((kvmft::MonotonicNs() - t0) / 1000000));
		json m;
		std::vector<kvmft::UniqueFd> fds;
		kvmft::MsgResult mr = kvmft::RecvMsg(fd.get(), &m, &fds, &st);
		if (mr == kvmft::MsgResult::kClosed)
			return Fail(o, EXIT_LOST, "ftlogd closed the event stream");
		if (mr != kvmft::MsgResult::kMsg)
			return Fail(o, EXIT_ERROR, st.msg());
		if (!m.contains("event"))
			continue;
		PrintEvent(o, m["event"]);
		if (count > 0)
			count--;
	}
	return EXIT_OK;
}

} // namespace kvmft::ctl
