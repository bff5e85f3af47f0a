// Tests for ftlogd.conf parsing.
#include "config.h"

#include <catch2/catch.hpp>

using namespace kvmft::logd;

namespace {

const char *kGood = R"(# host a
host_name = a
host_id = 1
ca = /etc/kvm-ft/ca.pem
cert = /etc/kvm-ft/a.pem
key = /etc/kvm-ft/a.key
heartbeat_interval_ms = 50
realtime_priority = 0
heartbeat_timeout_ms = 500
listen = 10.1.0.1:7301 dev ftlog0
listen = 10.2.0.1:7301
[peer b]
path = 10.1.0.1 dev ftlog0 -> 10.1.0.2:7301   # preferred
path = 10.2.0.1 -> 10.2.0.2:7301
fingerprint = AB:cd
)";

} // namespace

TEST_CASE("a full configuration parses")
{
	Config c;
	kvmft::Status st = ParseConfig(kGood, "t.conf", &c);
	REQUIRE(st.ok());
	CHECK(c.host_name == "a");
	CHECK(c.host_id == 1);
	CHECK(c.heartbeat_interval_ms == 50);
	CHECK(c.heartbeat_timeout_ms == 500);
	CHECK(c.connect_timeout_ms == 1000);
	CHECK(c.realtime_priority == 0);
	REQUIRE(c.listens.size() == 2);
	CHECK(c.listens[0].dev == "ftlog0");
	CHECK(c.listens[1].addr.str() == "10.2.0.1:7301");
	const Peer *b = c.FindPeer("b");
	REQUIRE(b);
	CHECK(b->fingerprint == "AB:cd");
	REQUIRE(b->paths.size() == 2);
	CHECK(b->paths[0].str() == "10.1.0.1:0 dev ftlog0 -> 10.1.0.2:7301");
	CHECK(b->paths[1].dev.empty());
	CHECK(!c.FindPeer("c"));
}

TEST_CASE("the default real-time priority is dropped on a one-CPU host, a given one is kept")
{
	std::string base = "host_name = a\nca = c\ncert = c\nkey = k\n";
	Config c;
	REQUIRE(ParseConfig(base, "t.conf", &c).ok());
	CHECK(c.realtime_priority == 1);
	CHECK(EffectivePriority(c, 2) == 1);
	CHECK(EffectivePriority(c, 0) == 1);	// count unknown
	CHECK(EffectivePriority(c, 1) == 0);
	Config given;
	REQUIRE(ParseConfig(base + "realtime_priority = 1\n", "t.conf", &given).ok());
	CHECK(EffectivePriority(given, 1) == 1);
	Config off;
	REQUIRE(ParseConfig(base + "realtime_priority = 0\n", "t.conf", &off).ok());
	CHECK(EffectivePriority(off, 4) == 0);
}

TEST_CASE("configuration errors name the file, the line and the problem")
{
	std::string base = "host_name = a\nca = c\ncert = c\nkey = k\n";
	Config c;
	auto err = [&](const std::string &extra) {
		return ParseConfig(base + extra, "t.conf", &c).msg();
	};
	CHECK(err("bogus = 1\n") == "t.conf:5: unknown key \"bogus\"");
	CHECK(err("heartbeat_interval_ms = 5\n") == "t.conf:5: \"5\" is not a number in 10..10000");
	CHECK(err("no equals sign\n") == "t.conf:5: expected KEY = VALUE");
	CHECK(err("realtime_priority = 100\n") == "t.conf:5: \"100\" is not a number in 0..99");
	CHECK(err("[peer]\n") == "t.conf:5: expected [peer NAME]");
	CHECK(err("[peer b]\npath = 10.0.0.1 -> 10.0.0.2\n") ==
	      "t.conf:6: address \"10.0.0.2\" needs a port");
	CHECK(err("[peer b]\npath = 10.0.0.1 dev\n").find("t.conf:6:") == 0);
	CHECK(err("[peer b]\npath = 10.0.0.1 -> [::1]:5\n") ==
	      "t.conf:6: local and peer addresses of different families");
	CHECK(err("[peer b]\n[peer b]\n") == "t.conf:6: peer b given twice");
	CHECK(err("heartbeat_interval_ms = 600\n") ==
	      "t.conf: heartbeat_timeout_ms must be at least twice heartbeat_interval_ms");
	CHECK(ParseConfig("host_name = a\n", "t.conf", &c).msg() ==
	      "t.conf: ca, cert and key are required (mutual TLS)");
	CHECK(LoadConfig("/nonexistent/ftlogd.conf", &c).msg().find("open /nonexistent") == 0);
}
