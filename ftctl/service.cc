// service.cc - ftctl service: the active/passive service of the local
// fthbd, over its control socket (Documentation/fthbd.md, "Control
// socket"): JSON objects on a unix SOCK_SEQPACKET socket.
#include <cstdio>
#include <cstdlib>

#include "channel/unix_msg.h"
#include "ftctl.h"
#include "print.h"

namespace kvmft::ctl {

using nlohmann::json;

namespace {

void Help(FILE *f)
{
	std::fprintf(f,
		     "Usage: ftctl service show [ NAME ] [ socket PATH ]\n"
		     "PATH defaults to $FTHBD_SOCKET or /run/fthbd/fthbd.sock\n");
}

int Ask(const Options &o, const std::string &sock, const json &req, json *rep)
{
	kvmft::UniqueFd fd;
	kvmft::Status st = kvmft::ConnectUnix(sock, &fd);
	if (!st.ok())
		return Fail(o, EXIT_UNAVAIL, "fthbd is not reachable: " + st.msg());
	st = kvmft::SendMsg(fd.get(), req);
	std::vector<kvmft::UniqueFd> fds;
	if (st.ok() && kvmft::RecvMsg(fd.get(), rep, &fds, &st) != kvmft::MsgResult::kMsg && st.ok())
		st = kvmft::Status::Error(ECONNRESET, "fthbd closed the connection");
	if (!st.ok())
		return Fail(o, EXIT_ERROR, st.msg());
	if (!rep->value("ok", false))
		return Fail(o, EXIT_ERROR, rep->value("error", "request failed"));
	return EXIT_OK;
}

void PrintShow(const Options &o, json j)
{
	j.erase("ok");
	if (o.json) {
		PrintJson(o, j);
		return;
	}
	std::printf("service %s server %s role %s state \"%s\" mode %s\n",
		    j.value("service", "").c_str(), j.value("server", "").c_str(),
		    j.value("role", "").c_str(), j.value("state", "").c_str(),
		    j.value("mode", "").c_str());
	std::printf("    peer %s channel %s synchronised %s address %s failovers %u\n",
		    j.value("peer", "").c_str(), j.value("channel", "").c_str(),
		    j.value("synchronised", false) ? "yes" : "no",
		    j.value("public_address", "").c_str(), j.value("failovers", 0u));
	if (j.value("role", "") == "active")
		std::printf("    unsafe queue: last seq %llu acked %llu records %llu bytes %llu lag %llu\n",
			    j.value("last_seq", 0ull), j.value("acked_seq", 0ull),
			    j.value("unsafe_records", 0ull), j.value("unsafe_bytes", 0ull),
			    j.value("lag_records", 0ull));
	else
		std::printf("    safe queue: seq %llu bytes %llu lag %llu\n", j.value("safe_seq", 0ull),
			    j.value("safe_bytes", 0ull), j.value("lag_records", 0ull));
}

} // namespace

int DoService(const Options &o, const Args &a)
{
	if (a.empty() || Matches(a[0], "help")) {
		Help(a.empty() ? stderr : stdout);
		return a.empty() ? EXIT_USAGE : EXIT_OK;
	}
	const char *env = std::getenv("FTHBD_SOCKET");
	std::string sock = env && *env ? env : "/run/fthbd/fthbd.sock", name;
	for (size_t i = 1; i < a.size(); i++) {
		if (a[i] == "socket" && i + 1 < a.size())
			sock = a[++i];
		else if (name.empty())
			name = a[i];
		else
			return Fail(o, EXIT_USAGE,
				    "unexpected \"" + a[i] + "\", try \"ftctl service help\"");
	}
	if (!Matches(a[0], "show"))
		return Fail(o, EXIT_USAGE, "unknown command \"" + a[0] + "\", try \"ftctl service help\"");
	json rep;
	int rc = Ask(o, sock, {{"cmd", "show"}, {"service", name}}, &rep);
	if (rc != EXIT_OK)
		return rc;
	if (!name.empty() && rep.value("service", "") != name)
		return Fail(o, EXIT_ERROR, "fthbd at " + sock + " protects \"" +
						   rep.value("service", "") + "\", not \"" + name + "\"");
	PrintShow(o, rep);
	return EXIT_OK;
}

} // namespace kvmft::ctl
