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

namespace ftctl {

namespace {

void SessionUsage(FILE *f)
{
	std::fprintf(f, "Usage: ftctl session { list | show NAME } [ socket PATH ]\n"
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
		const char *keys[] = {"socket", "after", "count", "timeout"};
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
	kvmft::UniqueFd fd;
	kvmft::Status st = kvmft::ConnectUnix(sock, &fd);
	if (!st.ok())
		return Fail(o, EXIT_UNAVAIL, "ftlogd is not reachable: " + st.msg());
	st = kvmft::SendMsg(fd.get(), req);
	std::vector<kvmft::UniqueFd> fds;
	if (st.ok() && kvmft::RecvMsg(fd.get(), rep, &fds, &st) != kvmft::MsgResult::kMsg && st.ok())
		st = kvmft::Status::Error(ECONNRESET, "ftlogd closed the connection");
	if (!st.ok())
		return Fail(o, EXIT_ERROR, st.msg());
	if (!rep->value("ok", false))
		return Fail(o, EXIT_ERROR, rep->value("error", "request failed"));
	return EXIT_OK;
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
	if (kv.count("socket"))
		return kv.at("socket");
	const char *env = std::getenv("FTLOGD_SOCKET");
	return env && *env ? env : "/run/ftlogd/ftlogd.sock";
}

} // namespace

int DoSession(const Options &o, const Args &a)
{
	if (a.empty() || Matches(a[0], "help")) {
		SessionUsage(a.empty() ? stderr : stdout);
		return a.empty() ? EXIT_USAGE : EXIT_OK;
	}
	bool show = Matches(a[0], "show");
	size_t from = show && a.size() > 1 ? 2 : 1;
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

} // namespace ftctl
