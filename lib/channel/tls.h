// tls.h - mutually authenticated TLS 1.3 (OpenSSL) for host-to-host
// traffic: the FT log channel and any host-to-host control traffic.
//
// Both ends present a host certificate and verify the other's against the
// cluster CA (ca_file), optionally also its name and/or a pinned SHA-256
// fingerprint of the peer's certificate. A certificate's names are its
// DNS subjectAltNames, or its CN if it has none (RFC 6125); a CN holding
// a NUL byte is refused. The peer must have the extended key usage of
// its role: clientAuth for the side that connects, serverAuth for the
// side that accepts. A peer that fails any check is
// cut off in the handshake, before any application byte (any log record)
// is read or written, and the error says why.
//
// Thread safety: a TlsContext may be shared; a TlsConn is used by one
// thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace kvmft {

struct TlsConfig {
	std::string ca_file;     // PEM: the cluster CA (required)
	std::string cert_file;   // PEM: this host's certificate (chain)
	std::string key_file;    // PEM: this host's private key
};

class TlsContext {
public:
	// Also sets SIGPIPE to ignored for the process: a write to a closed
	// connection must fail with EPIPE, not kill the program.
	static Status Create(const TlsConfig &c, bool server, std::shared_ptr<TlsContext> *out);
	~TlsContext();
	SSL_CTX *get() const { return ctx_; }
	bool server() const { return server_; }

private:
	SSL_CTX *ctx_ = nullptr;
	bool server_ = false;
};

// What to demand of the peer beyond a chain to the CA.
struct PeerCheck {
	std::string name;        // one of the certificate's names; empty: any
	std::string sha256;      // pinned fingerprint, hex (colons allowed); empty: none
};

// SHA-256 fingerprint of the certificate in a PEM file, lower-case hex.
Status CertFingerprint(const std::string &pem_file, std::string *hex);

class TlsConn {
public:
	enum Io { kOk, kAgain, kClosed, kError };

	TlsConn(std::shared_ptr<TlsContext> ctx, UniqueFd fd);
	~TlsConn();
	TlsConn(const TlsConn &) = delete;
	TlsConn &operator=(const TlsConn &) = delete;

	// Runs the handshake to completion (the socket may be non-blocking:
	// waits with poll) and checks the peer. On failure nothing has been
	// exchanged but handshake messages.
	Status Handshake(const PeerCheck &pc, int timeout_ms);
	// One step of the handshake that never waits: kOk once it is done
	// and the peer checked; kAgain: call again when the socket is
	// readable (writable if want_write()); kError with *err.
	Io HandshakeStep(const PeerCheck &pc, Status *err);

	// Non-blocking I/O. kAgain: retry when the socket is readable (or
	// writable if want_write()). n: bytes moved on kOk.
	//
	// Write() encrypts into a 256 KiB buffer in front of the socket and
	// writes that out with one write() per buffer, not one per 16 KiB TLS
	// record (fewer system calls here, fewer wakeups of the reader); it
	// flushes before it returns, so nothing waits in the buffer unless
	// the socket is full: then want_write() is true and Flush(), or the
	// next Write(), sends the rest once the socket is writable. A retry
	// after kAgain must pass the same bytes again (TLS rule).
	Io Read(void *buf, size_t len, size_t *n, Status *err);
	Io Write(const void *buf, size_t len, size_t *n, Status *err);
	Io Flush(Status *err);
	bool want_write() const;
	// True if Read() may return data without the socket becoming
	// readable: OpenSSL holds bytes not yet returned, decrypted or read
	// ahead from the socket (OpenSSL reads ahead up to 256 KiB). A
	// partial record after Read() said kAgain does not count: it needs
	// the socket. A caller that polls the socket must check this first.
	bool pending() const;

	int fd() const { return fd_.get(); }
	// The certificate's names (DNS SANs, or the CN) and the first of them.
	const std::vector<std::string> &peer_names() const { return peer_names_; }
	const std::string &peer_name() const { return peer_name_; }
	bool PeerNamed(const std::string &name) const; // one of peer_names(), any case
	const std::string &peer_sha256() const { return peer_sha256_; }

private:
	Status CheckPeer(const PeerCheck &pc);
	Io Result(int r, size_t *n, Status *err, const char *what);
	std::shared_ptr<TlsContext> ctx_;
	UniqueFd fd_;
	SSL *ssl_ = nullptr;
	bool want_write_ = false;
	bool read_blocked_ = false; // the last Read() needs more from the socket
	std::string verify_error_; // why VerifyLeaf() refused the peer's certificate
	std::vector<std::string> peer_names_;
	std::string peer_name_, peer_sha256_;
};

} // namespace kvmft
