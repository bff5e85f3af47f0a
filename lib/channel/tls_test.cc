// Tests for mutual TLS: certificates are made at test time with
// ftlogd-mkcert (openssl): a cluster CA with hosts a and b, and a rogue
// CA with a host that claims to be b. Connections run over socketpairs.
#include "channel/net.h"
#include "channel/tls.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <future>
#include <string>

using namespace kvmft;

namespace {

struct Pki {
	std::string dir;
	Pki()
	{
		char t[] = "/tmp/kvmft-tls-XXXXXX";
		REQUIRE(mkdtemp(t));
		dir = t;
		std::string mk = KVMFT_MKCERT;
		std::string cmd = mk + " ca " + dir + "/ca && " + mk + " host " + dir + "/ca " +
				  dir + " a && " + mk + " host " + dir + "/ca " + dir + " b && " +
				  mk + " ca " + dir + "/rogue && " + mk + " host " + dir +
				  "/rogue " + dir + "/rogue b";
		REQUIRE(std::system(cmd.c_str()) == 0);
	}
	~Pki() { std::system(("rm -rf " + dir).c_str()); }
	TlsConfig Host(const std::string &h, bool rogue = false) const
	{
		std::string d = rogue ? dir + "/rogue" : dir;
		return TlsConfig{dir + "/ca/ca.pem", d + "/" + h + ".pem", d + "/" + h + ".key"};
	}
};

const Pki &GetPki()
{
	static Pki p;
	return p;
}

struct Outcome {
	Status client, server;
	std::string server_got; // application bytes the server read
	std::string client_peer, server_peer;
};

// Client (cfg c, checks pc) talks to server (cfg s, checks ps); on
// success the client sends "hello" and the server answers "ack".
Outcome Run(const TlsConfig &c, const PeerCheck &pc, const TlsConfig &s, const PeerCheck &ps)
{
	std::shared_ptr<TlsContext> cc, sc;
	REQUIRE(TlsContext::Create(c, false, &cc).ok());
	REQUIRE(TlsContext::Create(s, true, &sc).ok());
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	Outcome o;
	auto server = std::async(std::launch::async, [&] {
		TlsConn t(sc, UniqueFd(sv[1]));
		o.server = t.Handshake(ps, 5000);
		o.server_peer = t.peer_name();
		// Even after a failed handshake, try to read: nothing may come.
		char buf[64];
		size_t n = 0;
		Status e;
		for (int i = 0; i < 200; i++) {
			TlsConn::Io r = t.Read(buf, sizeof(buf), &n, &e);
			if (r == TlsConn::kOk) {
				o.server_got.append(buf, n);
				if (o.server_got == "hello") {
					t.Write("ack", 3, &n, &e);
					break;
				}
			} else if (r != TlsConn::kAgain) {
				break;
			}
			usleep(5000);
		}
	});
	TlsConn t(cc, UniqueFd(sv[0]));
	o.client = t.Handshake(pc, 5000);
	o.client_peer = t.peer_name();
	if (o.client.ok()) {
		size_t n = 0;
		Status e;
		// A server that refused our certificate may have closed the
		// connection already: then the write fails (EPIPE).
		TlsConn::Io w = t.Write("hello", 5, &n, &e);
		char buf[8];
		std::string got;
		for (int i = 0; i < 400 && got != "ack" && w == TlsConn::kOk; i++) {
			TlsConn::Io r = t.Read(buf, sizeof(buf), &n, &e);
			if (r == TlsConn::kOk)
				got.append(buf, n);
			else if (r != TlsConn::kAgain)
				break;
			usleep(5000);
		}
		// The server may have refused us after our handshake finished
		// (TLS 1.3 client auth completes on the server's side later).
		if (w != TlsConn::kOk)
			o.client = Status::Error(ECONNRESET, "write failed: " + e.msg());
		else if (got != "ack" && o.client.ok())
			o.client = Status::Error(ECONNRESET, "no answer from server");
	}
	server.get();
	return o;
}

} // namespace

TEST_CASE("hosts with certificates from the cluster CA talk")
{
	const Pki &p = GetPki();
	Outcome o = Run(p.Host("a"), PeerCheck{"b", ""}, p.Host("b"), PeerCheck{"a", ""});
	INFO(o.client.msg() << " / " << o.server.msg());
	CHECK(o.client.ok());
	CHECK(o.server.ok());
	CHECK(o.server_got == "hello");
	CHECK(o.client_peer == "b");
	CHECK(o.server_peer == "a");
}

TEST_CASE("a server with a rogue certificate is cut off before any data")
{
	const Pki &p = GetPki();
	Outcome o = Run(p.Host("a"), PeerCheck{"b", ""}, p.Host("b", true), PeerCheck{});
	CHECK(!o.client.ok());
	CHECK(o.client.msg().find("peer certificate rejected") != std::string::npos);
	CHECK(o.server_got.empty());
}

TEST_CASE("a client with a rogue certificate is cut off before any data")
{
	const Pki &p = GetPki();
	Outcome o = Run(p.Host("b", true), PeerCheck{}, p.Host("a"), PeerCheck{});
	CHECK(!o.server.ok());
	CHECK(o.server.msg().find("peer certificate rejected") != std::string::npos);
	CHECK(o.server_got.empty());
	CHECK(!o.client.ok());
}

TEST_CASE("a valid certificate for the wrong host is refused")
{
	const Pki &p = GetPki();
	// a expects to reach b but b presents... a's own certificate.
	Outcome o = Run(p.Host("a"), PeerCheck{"b", ""}, p.Host("a"), PeerCheck{});
	CHECK(o.client.msg() == "TLS: peer certificate is for \"a\", expected \"b\"");
	CHECK(o.server_got.empty());
}

TEST_CASE("pinned fingerprints: match passes, mismatch fails")
{
	const Pki &p = GetPki();
	std::string fa, fb;
	REQUIRE(CertFingerprint(p.dir + "/a.pem", &fa).ok());
	REQUIRE(CertFingerprint(p.dir + "/b.pem", &fb).ok());
	CHECK(fa.size() == 64);
	Outcome ok = Run(p.Host("a"), PeerCheck{"", fb}, p.Host("b"), PeerCheck{"", fa});
	CHECK(ok.client.ok());
	CHECK(ok.server.ok());
	Outcome bad = Run(p.Host("a"), PeerCheck{"", fa}, p.Host("b"), PeerCheck{});
	CHECK(bad.client.msg().find("does not match the pinned one") != std::string::npos);
}

TEST_CASE("bad TLS configuration is reported with the file")
{
	const Pki &p = GetPki();
	std::shared_ptr<TlsContext> c;
	TlsConfig t = p.Host("a");
	t.key_file = p.dir + "/b.key";
	Status st = TlsContext::Create(t, false, &c);
	CHECK(st.msg().find("does not match") != std::string::npos);
	t = p.Host("a");
	t.ca_file = p.dir + "/nope.pem";
	CHECK(TlsContext::Create(t, true, &c).msg().find("nope.pem") != std::string::npos);
}

TEST_CASE("socket addresses parse, bad ones are refused")
{
	SockAddr a;
	REQUIRE(ParseSockAddr("10.1.2.3:7301", false, &a).ok());
	CHECK(a.str() == "10.1.2.3:7301");
	REQUIRE(ParseSockAddr("[fd00::1]:9", false, &a).ok());
	CHECK(a.str() == "[fd00::1]:9");
	REQUIRE(ParseSockAddr("10.1.2.3", true, &a).ok());
	CHECK(a.str() == "10.1.2.3:0");
	CHECK(!ParseSockAddr("10.1.2.3", false, &a).ok());
	CHECK(!ParseSockAddr("10.1.2.3:70000", false, &a).ok());
	CHECK(!ParseSockAddr("host:1", false, &a).ok());
}
