// tls.cc - mutual TLS 1.3 over a TCP socket with OpenSSL.
#include "channel/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <time.h>

#include <strings.h>

#include <csignal>

#include <cstdio>
#include <memory>
#include <vector>

namespace kvmft {

namespace {

constexpr size_t kReadBuffer = 256 * 1024;
constexpr int kWriteBuffer = 256 * 1024;

// All queued OpenSSL errors as one line, queue cleared.
std::string SslErrors()
{
	std::string s;
	unsigned long e;
	char buf[256];
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		if (!s.empty())
			s += "; ";
		s += buf;
	}
	return s.empty() ? "unknown TLS error" : s;
}

std::string Hex(const unsigned char *p, unsigned n)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (unsigned i = 0; i < n; i++) {
		s += d[p[i] >> 4];
		s += d[p[i] & 15];
	}
	return s;
}

std::string NormHex(const std::string &in)
{
	std::string s;
	for (char c : in)
		if (c != ':')
			s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	return s;
}

std::string X509Sha256(X509 *x)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	X509_digest(x, EVP_sha256(), md, &n);
	return Hex(md, n);
}

// The subject's common name; an error if it holds a NUL byte (a name
// cut at the NUL could pass for another host's).
Status SubjectCN(X509 *x, std::string *cn)
{
	cn->clear();
	X509_NAME *n = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	if (i < 0)
		return Status::Ok();
	const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
	unsigned char *utf8 = nullptr;
	int len = ASN1_STRING_to_UTF8(&utf8, d);
	if (len < 0)
		return Status::Error(EACCES, "TLS: peer certificate has a malformed common name");
	cn->assign(reinterpret_cast<const char *>(utf8), static_cast<size_t>(len));
	OPENSSL_free(utf8);
	if (cn->find('\0') != std::string::npos)
		return Status::Error(EACCES, "TLS: peer certificate has a NUL byte in its common name");
	return Status::Ok();
}

// The certificate's DNS subjectAltNames (without any holding a NUL).
std::vector<std::string> DnsSans(X509 *x)
{
	std::vector<std::string> out;
	auto *sans = static_cast<GENERAL_NAMES *>(
		X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		if (g->type != GEN_DNS)
			continue;
		const ASN1_STRING *s = g->d.dNSName;
		std::string name(reinterpret_cast<const char *>(ASN1_STRING_get0_data(s)),
				 static_cast<size_t>(ASN1_STRING_length(s)));
		if (name.find('\0') == std::string::npos)
			out.push_back(name);
	}
	GENERAL_NAMES_free(sans);
	return out;
}

// The peer must be allowed the role it plays: a client needs clientAuth,
// a server serverAuth, given explicitly (a certificate without the
// extension would pass OpenSSL's purpose check).
Status CheckEku(X509 *x, bool peer_is_client)
{
	uint32_t want = peer_is_client ? XKU_SSL_CLIENT : XKU_SSL_SERVER;
	if ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) &&
	    (X509_get_extended_key_usage(x) & want))
		return Status::Ok();
	return Status::Error(EACCES, std::string("TLS: peer certificate lacks the extended key "
						 "usage ") +
					     (peer_is_client ? "TLS client authentication (clientAuth)"
							     : "TLS server authentication (serverAuth)"));
}

// SSL_CTX_set_verify callback: our checks of the peer's own certificate
// (depth 0) on top of OpenSSL's, so that a peer failing them is cut off in
// the handshake. The first failure's text goes to the TlsConn.
int VerifyLeaf(int ok, X509_STORE_CTX *c)
{
	if (X509_STORE_CTX_get_error_depth(c) != 0)
		return ok;
	auto *ssl = static_cast<SSL *>(
		X509_STORE_CTX_get_ex_data(c, SSL_get_ex_data_X509_STORE_CTX_idx()));
	X509 *x = X509_STORE_CTX_get_current_cert(c);
	std::string cn;
	Status st = SubjectCN(x, &cn);
	if (st.ok())
		st = CheckEku(x, SSL_is_server(ssl));
	if (st.ok())
		return ok;
	auto *why = static_cast<std::string *>(SSL_get_app_data(ssl));
	if (why && why->empty())
		*why = st.msg();
	X509_STORE_CTX_set_error(c, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

int64_t NowMs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

} // namespace

Status TlsContext::Create(const TlsConfig &c, bool server, std::shared_ptr<TlsContext> *out)
{
	// OpenSSL writes to the socket with write(): a peer that closed the
	// connection would kill the process with SIGPIPE instead of giving
	// EPIPE. Every program that makes TLS connections wants the error.
	signal(SIGPIPE, SIG_IGN);
	auto t = std::make_shared<TlsContext>();
	t->server_ = server;
	t->ctx_ = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!t->ctx_)
		return Status::Error(ENOMEM, "SSL_CTX_new: " + SslErrors());
	SSL_CTX *x = t->ctx_;
	SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION);
	// AES-128-GCM first: the cheapest AEAD with AES-NI on the log path.
	SSL_CTX_set_ciphersuites(x, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
				    "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	// Read ahead into a 256 KiB buffer: one read() takes many records
	// instead of two read()s per record (header, then body).
	SSL_CTX_set_read_ahead(x, 1);
	SSL_CTX_set_default_read_buffer_len(x, kReadBuffer);
	SSL_CTX_set_verify(x, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, VerifyLeaf);
	if (server)
		SSL_CTX_set_num_tickets(x, 0); // no resumption: every peer shows its cert
	if (c.ca_file.empty())
		return Status::Error(EINVAL, "TLS: a CA file is required (peers are verified)");
	if (SSL_CTX_load_verify_locations(x, c.ca_file.c_str(), nullptr) != 1)
		return Status::Error(EINVAL, "TLS: load CA " + c.ca_file + ": " + SslErrors());
	if (SSL_CTX_use_certificate_chain_file(x, c.cert_file.c_str()) != 1)
		return Status::Error(EINVAL, "TLS: load certificate " + c.cert_file + ": " +
						     SslErrors());
	if (SSL_CTX_use_PrivateKey_file(x, c.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
			return Status::Error(EINVAL, "TLS: load key " + c.key_file + ": " +
							     SslErrors());
		ERR_clear_error();
		return Status::Error(EINVAL, "TLS: key " + c.key_file + " does not match " +
						     c.cert_file);
	}
	if (SSL_CTX_check_private_key(x) != 1)
		return Status::Error(EINVAL, "TLS: key " + c.key_file + " does not match " +
						     c.cert_file);
	*out = std::move(t);
	return Status::Ok();
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Status CertFingerprint(const std::string &pem_file, std::string *hex)
{
	FILE *f = std::fopen(pem_file.c_str(), "r");
	if (!f)
		return Status::Errno("open " + pem_file);
	X509 *x = PEM_read_X509(f, nullptr, nullptr, nullptr);
	std::fclose(f);
	if (!x)
		return Status::Error(EINVAL, pem_file + ": no PEM certificate");
	*hex = X509Sha256(x);
	X509_free(x);
	return Status::Ok();
}

TlsConn::TlsConn(std::shared_ptr<TlsContext> ctx, UniqueFd fd)
	: ctx_(std::move(ctx)), fd_(std::move(fd))
{
	ssl_ = SSL_new(ctx_->get());
	if (!ssl_ || SSL_set_fd(ssl_, fd_.get()) != 1)
		return;
	SSL_set_app_data(ssl_, &verify_error_);
	// Records are written through a buffer BIO in front of the socket
	// BIO. The socket BIO stays the read BIO too: one more reference for
	// the chain (SSL_free frees the write chain, then the read BIO).
	BIO *sock = SSL_get_wbio(ssl_);
	BIO *buf = BIO_new(BIO_f_buffer());
	if (!buf || BIO_set_write_buffer_size(buf, kWriteBuffer) != 1 || !BIO_up_ref(sock)) {
		BIO_free(buf);
		return; // unbuffered: still correct
	}
	BIO_push(buf, sock);
	SSL_set0_wbio(ssl_, buf);
}

TlsConn::~TlsConn() { SSL_free(ssl_); }

bool TlsConn::pending() const
{
	// SSL_has_pending() is also true for a partial record read ahead;
	// after Read() said kAgain that is all there is: it needs the socket.
	return ssl_ && (SSL_pending(ssl_) > 0 || (!read_blocked_ && SSL_has_pending(ssl_)));
}

TlsConn::Io TlsConn::HandshakeStep(const PeerCheck &pc, Status *err)
{
	if (!ssl_) {
		*err = Status::Error(ENOMEM, "SSL_new: " + SslErrors());
		return kError;
	}
	if (!ctx_->server() && !pc.name.empty() && !SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name))
		SSL_set_tlsext_host_name(ssl_, pc.name.c_str());
	ERR_clear_error();
	int r = ctx_->server() ? SSL_accept(ssl_) : SSL_connect(ssl_);
	if (r == 1) {
		want_write_ = false;
		*err = CheckPeer(pc);
		return err->ok() ? kOk : kError;
	}
	int e = SSL_get_error(ssl_, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		want_write_ = e == SSL_ERROR_WANT_WRITE;
		return kAgain;
	}
	long v = SSL_get_verify_result(ssl_);
	if (!verify_error_.empty()) {
		*err = Status::Error(EACCES, verify_error_);
		return kError;
	}
	std::string why = v != X509_V_OK ? std::string("peer certificate rejected: ") +
						   X509_verify_cert_error_string(v)
					 : SslErrors();
	if (e == SSL_ERROR_SYSCALL && v == X509_V_OK)
		why = "connection closed during TLS handshake";
	*err = Status::Error(EACCES, "TLS handshake: " + why);
	return kError;
}

Status TlsConn::Handshake(const PeerCheck &pc, int timeout_ms)
{
	int64_t deadline = NowMs() + timeout_ms;
	for (;;) {
		Status err;
		Io r = HandshakeStep(pc, &err);
		if (r != kAgain)
			return err;
		int left = static_cast<int>(deadline - NowMs());
		pollfd p{fd_.get(), static_cast<short>(want_write_ ? POLLOUT : POLLIN), 0};
		if (left <= 0 || poll(&p, 1, left) == 0)
			return Status::Error(ETIMEDOUT, "TLS handshake timed out");
	}
}

Status TlsConn::CheckPeer(const PeerCheck &pc)
{
	X509 *x = SSL_get1_peer_certificate(ssl_);
	if (!x)
		return Status::Error(EACCES, "TLS: peer sent no certificate");
	std::unique_ptr<X509, void (*)(X509 *)> hold(x, X509_free);
	if (SSL_get_verify_result(ssl_) != X509_V_OK)
		return Status::Error(EACCES, "TLS: peer certificate not verified");
	std::string cn;
	SubjectCN(x, &cn); // checked in VerifyLeaf()
	// RFC 6125: the DNS SANs are the names; the CN only without them.
	peer_names_ = DnsSans(x);
	if (peer_names_.empty() && !cn.empty())
		peer_names_.push_back(cn);
	peer_name_ = peer_names_.empty() ? "" : peer_names_.front();
	peer_sha256_ = X509Sha256(x);
	if (!pc.name.empty() && !PeerNamed(pc.name))
		return Status::Error(EACCES, "TLS: peer certificate is for \"" + peer_name_ +
						     "\", expected \"" + pc.name + "\"");
	if (!pc.sha256.empty() && NormHex(pc.sha256) != peer_sha256_)
		return Status::Error(EACCES, "TLS: peer certificate fingerprint " + peer_sha256_ +
						     " does not match the pinned one");
	return Status::Ok();
}

bool TlsConn::PeerNamed(const std::string &name) const
{
	for (const std::string &n : peer_names_)
		if (strcasecmp(n.c_str(), name.c_str()) == 0)
			return true;
	return false;
}

TlsConn::Io TlsConn::Result(int r, size_t *n, Status *err, const char *what)
{
	want_write_ = false;
	if (r > 0) {
		*n = static_cast<size_t>(r);
		return kOk;
	}
	int e = SSL_get_error(ssl_, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return kAgain;
	case SSL_ERROR_WANT_WRITE:
		want_write_ = true;
		return kAgain;
	case SSL_ERROR_ZERO_RETURN:
		return kClosed;
	case SSL_ERROR_SYSCALL:
		*err = errno ? Status::Errno(std::string("TLS ") + what)
			     : Status::Error(ECONNRESET, std::string("TLS ") + what +
								  ": connection closed");
		return errno ? kError : kClosed;
	default: {
		// A certificate alert from the peer: it refused our certificate
		// (TLS 1.3 servers check the client's after the handshake).
		int reason = ERR_GET_REASON(ERR_peek_error());
		bool refused = reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
			       reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
			       reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN ||
			       reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
			       reason == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED ||
			       reason == SSL_R_TLSV1_ALERT_ACCESS_DENIED ||
			       reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED;
		std::string e = SslErrors();
		*err = refused ? Status::Error(EACCES, "peer refused our certificate: " + e)
			       : Status::Error(EPROTO, std::string("TLS ") + what + ": " + e);
		return kError;
	}
	}
}

TlsConn::Io TlsConn::Read(void *buf, size_t len, size_t *n, Status *err)
{
	ERR_clear_error();
	errno = 0;
	*n = 0;
	Io r = Result(SSL_read(ssl_, buf, static_cast<int>(len)), n, err, "read");
	read_blocked_ = r == kAgain && !want_write_;
	return r;
}

TlsConn::Io TlsConn::Write(const void *buf, size_t len, size_t *n, Status *err)
{
	// With partial writes enabled SSL_write() returns after each record:
	// loop, so the records go out together at the flush.
	const auto *p = static_cast<const char *>(buf);
	*n = 0;
	Io r = kOk;
	while (*n < len) {
		ERR_clear_error();
		errno = 0;
		size_t k = 0;
		r = Result(SSL_write(ssl_, p + *n, static_cast<int>(len - *n)), &k, err, "write");
		if (r != kOk)
			break;
		*n += k;
	}
	if (r != kOk && r != kAgain)
		return r;
	if (*n)
		r = kOk; // the rest, if any, is retried from *n on
	Io f = Flush(err);
	return f == kOk || f == kAgain ? r : f;
}

TlsConn::Io TlsConn::Flush(Status *err)
{
	BIO *b = SSL_get_wbio(ssl_);
	if (BIO_wpending(b) <= 0)
		return kOk;
	errno = 0;
	if (BIO_flush(b) > 0) {
		want_write_ = false;
		return kOk;
	}
	if (BIO_should_retry(b)) {
		want_write_ = true;
		return kAgain;
	}
	*err = errno ? Status::Errno("TLS write")
		     : Status::Error(ECONNRESET, "TLS write: connection closed");
	return kError;
}

bool TlsConn::want_write() const
{
	return want_write_ || (ssl_ && BIO_wpending(SSL_get_wbio(ssl_)) > 0);
}

} // namespace kvmft
