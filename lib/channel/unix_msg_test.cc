// Tests for the control socket framing: JSON messages with fds attached.
#include "channel/unix_msg.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

using namespace kvmft;
using nlohmann::json;

namespace {

ino_t Inode(int fd)
{
	struct stat sb;
	REQUIRE(fstat(fd, &sb) == 0);
	return sb.st_ino;
}

struct Pair {
	UniqueFd a, b;
	Pair()
	{
		int sv[2];
		REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) == 0);
		a.reset(sv[0]);
		b.reset(sv[1]);
	}
};

} // namespace

TEST_CASE("messages arrive whole, in order, with their own fds")
{
	Pair s;
	int p[2];
	REQUIRE(pipe(p) == 0);
	UniqueFd r(p[0]), w(p[1]);
	REQUIRE(SendMsg(s.a.get(), json{{"cmd", "one"}}).ok());
	REQUIRE(SendMsg(s.a.get(), json{{"cmd", "two"}}, {r.get(), w.get()}).ok());
	REQUIRE(SendMsg(s.a.get(), json{{"cmd", "three"}}).ok());
	json m;
	std::vector<UniqueFd> fds;
	Status err;
	REQUIRE(RecvMsg(s.b.get(), &m, &fds, &err) == MsgResult::kMsg);
	CHECK(m["cmd"] == "one");
	CHECK(fds.empty());
	REQUIRE(RecvMsg(s.b.get(), &m, &fds, &err) == MsgResult::kMsg);
	CHECK(m["cmd"] == "two");
	REQUIRE(fds.size() == 2);
	CHECK(Inode(fds[0].get()) == Inode(r.get()));
	CHECK(Inode(fds[1].get()) == Inode(w.get()));
	REQUIRE(RecvMsg(s.b.get(), &m, &fds, &err) == MsgResult::kMsg);
	CHECK(m["cmd"] == "three");
	CHECK(fds.empty());
	CHECK(RecvMsg(s.b.get(), &m, &fds, &err) == MsgResult::kAgain);
	s.a.reset();
	CHECK(RecvMsg(s.b.get(), &m, &fds, &err) == MsgResult::kClosed);
}

TEST_CASE("bad messages are errors that say why, the next one still reads")
{
	json j;
	CHECK(ParseMsg("{\"cmd\":", 7, &j).msg() == "message is not valid JSON");
	CHECK(ParseMsg("[1,2]", 5, &j).msg() == "message is not a JSON object");
	Pair s;
	std::string big(kMsgMaxLen + 100, ' ');
	REQUIRE(send(s.a.get(), big.data(), big.size(), 0) == static_cast<ssize_t>(big.size()));
	REQUIRE(send(s.a.get(), "\xff\xfe", 2, 0) == 2);
	REQUIRE(SendMsg(s.a.get(), json{{"cmd", "list"}}).ok());
	std::vector<UniqueFd> fds;
	Status err;
	CHECK(RecvMsg(s.b.get(), &j, &fds, &err) == MsgResult::kError);
	CHECK(err.err() == EMSGSIZE);
	CHECK(RecvMsg(s.b.get(), &j, &fds, &err) == MsgResult::kError);
	CHECK(err.msg() == "message is not valid JSON");
	REQUIRE(RecvMsg(s.b.get(), &j, &fds, &err) == MsgResult::kMsg);
	CHECK(j["cmd"] == "list");
}

TEST_CASE("nesting deeper than kMsgMaxDepth is refused before parsing")
{
	auto nested = [](size_t depth, const char *open, const char *close) {
		std::string s = "{\"cmd\": \"ping\", \"tag\": ";
		for (size_t i = 0; i < depth; i++)
			s += open;
		for (size_t i = 0; i < depth; i++)
			s += close;
		return s + "}";
	};
	json j;
	// The outer object is one level: a tag nested to the limit passes.
	CHECK(ParseMsg(nested(kMsgMaxDepth - 1, "[", "]").data(),
		       nested(kMsgMaxDepth - 1, "[", "]").size(), &j).ok());
	std::string deep = nested(kMsgMaxDepth, "[", "]");
	Status st = ParseMsg(deep.data(), deep.size(), &j);
	CHECK(st.err() == EBADMSG);
	CHECK(st.msg() == "message nested deeper than " + std::to_string(kMsgMaxDepth) + " levels");
	std::string objs = nested(5000, "{\"a\":", "}");
	CHECK(ParseMsg(objs.data(), objs.size(), &j).err() == EBADMSG);
	// Brackets inside strings are text, not nesting.
	std::string text = "{\"cmd\": \"" + std::string(1000, '[') + "\\\"\"}";
	REQUIRE(ParseMsg(text.data(), text.size(), &j).ok());
	CHECK(j["cmd"].get<std::string>().size() == 1001);
}

TEST_CASE("ParseJson: a size limit of its own, for JSON that is not a control message")
{
	json j;
	std::string small = "{\"session\": \"vm\"}";
	REQUIRE(ParseJson(small.data(), small.size(), 64, "HELLO", &j).ok());
	CHECK(j["session"] == "vm");
	std::string big = "{\"session\": \"" + std::string(100, 'x') + "\"}";
	Status st = ParseJson(big.data(), big.size(), 64, "HELLO", &j);
	CHECK(st.err() == EMSGSIZE);
	CHECK(st.msg() == "HELLO longer than 64 bytes");
	CHECK(ParseJson("[1]", 3, 64, "HELLO", &j).msg() == "HELLO is not a JSON object");
}
