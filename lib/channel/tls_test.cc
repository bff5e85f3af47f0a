// Tests for mutual TLS: certificates are made at test time with
// ftlogd-mkcert (openssl): a cluster CA with hosts a and b, and a rogue
// CA with a host that claims to be b. Connections run over socketpairs.
#include "channel/net.h"
#include "channel/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <vector>

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

namespace {

// A host certificate signed by the cluster CA, made here because openssl's
// command line cannot put a NUL into a name: CN `cn` (any bytes), the
// extendedKeyUsage `eku` and subjectAltName `san` in openssl's config
// syntax (empty: none). Returns the TlsConfig that presents it.
TlsConfig MakeCert(const Pki &p, const std::string &file, const std::string &cn,
		   const std::string &eku, const std::string &san)
{
	auto load = [](const std::string &f, bool key) -> void * {
		FILE *in = std::fopen(f.c_str(), "r");
		REQUIRE(in);
		void *r = key ? static_cast<void *>(PEM_read_PrivateKey(in, nullptr, nullptr, nullptr))
			      : static_cast<void *>(PEM_read_X509(in, nullptr, nullptr, nullptr));
		std::fclose(in);
		REQUIRE(r);
		return r;
	};
	X509 *ca = static_cast<X509 *>(load(p.dir + "/ca/ca.pem", false));
	EVP_PKEY *ca_key = static_cast<EVP_PKEY *>(load(p.dir + "/ca/ca.key", true));
	EVP_PKEY *key = EVP_EC_gen("P-256");
	REQUIRE(key);
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1000 + static_cast<long>(file.size()));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	REQUIRE(X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
					   reinterpret_cast<const unsigned char *>(cn.data()),
					   static_cast<int>(cn.size()), -1, 0) == 1);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca, x, nullptr, nullptr, 0);
	std::vector<std::pair<int, std::string>> ext = {
		{NID_basic_constraints, "CA:FALSE"},
		{NID_key_usage, "critical,digitalSignature"},
		{NID_ext_key_usage, eku},
		{NID_subject_alt_name, san},
	};
	for (auto &[nid, v] : ext) {
		if (v.empty())
			continue;
		X509_EXTENSION *e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, v.c_str());
		REQUIRE(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	REQUIRE(X509_sign(x, ca_key, EVP_sha256()) > 0);
	std::string pem = p.dir + "/" + file + ".pem", kf = p.dir + "/" + file + ".key";
	FILE *out = std::fopen(pem.c_str(), "w");
	REQUIRE(out);
	PEM_write_X509(out, x);
	std::fclose(out);
	out = std::fopen(kf.c_str(), "w");
	REQUIRE(out);
	PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
	std::fclose(out);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	return TlsConfig{p.dir + "/ca/ca.pem", pem, kf};
}

constexpr const char *kBothEku = "serverAuth,clientAuth";

} // namespace

TEST_CASE("a certificate made here with both EKUs and a DNS SAN is accepted")
{
	const Pki &p = GetPki();
	TlsConfig b = MakeCert(p, "b-ok", "b", kBothEku, "DNS:b");
	Outcome o = Run(p.Host("a"), PeerCheck{"b", ""}, b, PeerCheck{"a", ""});
	INFO(o.client.msg() << " / " << o.server.msg());
	CHECK(o.client.ok());
	CHECK(o.server.ok());
	CHECK(o.client_peer == "b");
}

TEST_CASE("a CN with an embedded NUL is refused, not cut at the NUL")
{
	const Pki &p = GetPki();
	TlsConfig b = MakeCert(p, "b-nul", std::string("b\0.evil.example", 16), kBothEku, "");
	Outcome o = Run(p.Host("a"), PeerCheck{"b", ""}, b, PeerCheck{});
	CHECK(o.client.msg() == "TLS: peer certificate has a NUL byte in its common name");
	CHECK(o.server_got.empty());
	Outcome s = Run(b, PeerCheck{}, p.Host("a"), PeerCheck{});
	CHECK(s.server.msg() == "TLS: peer certificate has a NUL byte in its common name");
	CHECK(s.server_got.empty());
}

TEST_CASE("a peer needs the TLS EKU of its role: clientAuth to connect, serverAuth to accept")
{
	const Pki &p = GetPki();
	TlsConfig server_only = MakeCert(p, "b-srv", "b", "serverAuth", "DNS:b");
	TlsConfig client_only = MakeCert(p, "b-cli", "b", "clientAuth", "DNS:b");
	TlsConfig none = MakeCert(p, "b-none", "b", "", "DNS:b");
	Outcome o = Run(server_only, PeerCheck{}, p.Host("a"), PeerCheck{});
	CHECK(o.server.msg().find("TLS client authentication (clientAuth)") != std::string::npos);
	CHECK(o.server_got.empty());
	o = Run(none, PeerCheck{}, p.Host("a"), PeerCheck{});
	CHECK(o.server.msg().find("TLS client authentication (clientAuth)") != std::string::npos);
	CHECK(o.server_got.empty());
	o = Run(p.Host("a"), PeerCheck{"b", ""}, client_only, PeerCheck{});
	CHECK(o.client.msg().find("TLS server authentication (serverAuth)") != std::string::npos);
	CHECK(o.server_got.empty());
	o = Run(p.Host("a"), PeerCheck{"b", ""}, none, PeerCheck{});
	CHECK(o.client.msg().find("TLS server authentication (serverAuth)") != std::string::npos);
	// The roles the certificate has are enough.
	o = Run(client_only, PeerCheck{}, server_only, PeerCheck{});
	INFO(o.client.msg() << " / " << o.server.msg());
	CHECK(o.client.ok());
	CHECK(o.server.ok());
}

TEST_CASE("names: DNS SANs when present (not the CN), else the CN")
{
	const Pki &p = GetPki();
	// CN says b, the SANs say otherwise: the SANs are the names.
	TlsConfig cn_only_b = MakeCert(p, "b-cnonly", "b", kBothEku, "DNS:x.example");
	Outcome o = Run(p.Host("a"), PeerCheck{"b", ""}, cn_only_b, PeerCheck{});
	CHECK(o.client.msg() == "TLS: peer certificate is for \"x.example\", expected \"b\"");
	// A SAN names b whatever the CN says; the server sees all names.
	TlsConfig san_b = MakeCert(p, "b-san", "host-b", kBothEku, "DNS:b,DNS:b.example");
	o = Run(san_b, PeerCheck{}, p.Host("a"), PeerCheck{"b", ""});
	INFO(o.client.msg() << " / " << o.server.msg());
	CHECK(o.server.ok());
	CHECK(o.server_peer == "b");
	// No SAN: the CN.
	TlsConfig cn_b = MakeCert(p, "b-cn", "b", kBothEku, "");
	o = Run(p.Host("a"), PeerCheck{"b", ""}, cn_b, PeerCheck{});
	CHECK(o.client.ok());
}
