// Tests for a request on ftlogd's control socket, against a peer that
// plays the daemon on a socket pair.
#include "logd_client/request.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "channel/unix_msg.h"

using namespace kvmft;
using nlohmann::json;

namespace {

// The requester's end, the end that plays ftlogd, and a pipe whose ends
// ride along with a request and with a reply.
struct Conn {
	UniqueFd client, daemon, pipe_r, pipe_w;
	Conn()
	{
		int sv[2], p[2];
		REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
		client.reset(sv[0]);
		daemon.reset(sv[1]);
		REQUIRE(pipe2(p, O_NONBLOCK) == 0);
		pipe_r.reset(p[0]);
		pipe_w.reset(p[1]);
	}
};

// True if a byte written to w comes out of r.
bool Connected(int w, int r)
{
	char c = 'x';
	return write(w, &c, 1) == 1 && read(r, &c, 1) == 1 && c == 'x';
}

} // namespace

TEST_CASE("a request skips pushed events and returns the reply with its fds")
{
	Conn c;
	REQUIRE(SendMsg(c.daemon.get(), {{"event", "connected"}}).ok());
	REQUIRE(SendMsg(c.daemon.get(), {{"ok", true}, {"id", 7}}, {c.pipe_w.get()}).ok());

	json rep;
	std::vector<UniqueFd> fds;
	REQUIRE(kvmft::logd::Request(c.client.get(), {{"cmd", "attach"}}, {c.pipe_r.get()}, &rep, &fds)
			.ok());
	CHECK(rep["id"] == 7);
	REQUIRE(fds.size() == 1);
	CHECK(Connected(fds[0].get(), c.pipe_r.get()));

	json req;
	std::vector<UniqueFd> sent;
	Status err;
	REQUIRE(RecvMsg(c.daemon.get(), &req, &sent, &err) == MsgResult::kMsg);
	CHECK(req["cmd"] == "attach");
	REQUIRE(sent.size() == 1);
	CHECK(Connected(c.pipe_w.get(), sent[0].get()));
}

TEST_CASE("a reply with ok false is an error with the daemon's text, and no fds")
{
	Conn c;
	REQUIRE(SendMsg(c.daemon.get(), {{"ok", false}, {"error", "no session vm1"}},
			{c.pipe_w.get()}).ok());

	json rep;
	std::vector<UniqueFd> fds;
	Status st = kvmft::logd::Request(c.client.get(), {{"cmd", "attach"}}, {}, &rep, &fds);
	CHECK(st.err() == EIO);
	CHECK(st.msg() == "no session vm1");
	CHECK(fds.empty());
}

TEST_CASE("a daemon that closes the connection before replying is ECONNRESET")
{
	Conn c;
	REQUIRE(SendMsg(c.daemon.get(), {{"event", "disconnected"}}).ok());
	REQUIRE(shutdown(c.daemon.get(), SHUT_WR) == 0);

	json rep;
	Status st = kvmft::logd::Request(c.client.get(), {{"cmd", "show"}}, {}, &rep);
	CHECK(st.err() == ECONNRESET);
	CHECK(st.msg() == "ftlogd closed the control connection");
}
