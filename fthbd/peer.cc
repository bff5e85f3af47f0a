// peer.cc - channel connection (peer.h).
#include "peer.h"

#include <poll.h>
#include <unistd.h>

namespace kvmft::hbd {

using kvmft::Status;
using kvmft::TlsConn;

Status PeerConn::Pump(int timeout_ms, int wake_fd)
{
	struct pollfd p[2] = {{tls_->fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
	if (!out_.empty() || tls_->want_write())
		p[0].events |= POLLOUT;
	if (poll(p, wake_fd >= 0 ? 2 : 1, tls_->pending() ? 0 : timeout_ms) < 0 && errno != EINTR)
		return Status::Errno("poll");
	if (p[1].revents & POLLIN) {
		uint64_t v;
		if (read(wake_fd, &v, sizeof v) < 0) {
			// Another thread drained it; nothing is lost.
		}
	}
	Status err;
	for (;;) {
		char buf[64 * 1024];
		size_t n = 0;
		TlsConn::Io io = tls_->Read(buf, sizeof buf, &n, &err);
		if (io == TlsConn::kOk) {
			in_.append(buf, n);
			continue;
		}
		if (io == TlsConn::kClosed)
			return Status::Error(ECONNRESET, "peer closed the channel");
		if (io == TlsConn::kError)
			return err;
		break;
	}
	while (!out_.empty()) {
		size_t n = 0;
		TlsConn::Io io = tls_->Write(out_.data(), out_.size(), &n, &err);
		if (io == TlsConn::kOk) {
			out_.erase(0, n);
			continue;
		}
		if (io == TlsConn::kError || io == TlsConn::kClosed)
			return err.ok() ? Status::Error(EPIPE, "channel write") : err;
		break;
	}
	if (out_.empty() && tls_->want_write()) {
		TlsConn::Io io = tls_->Flush(&err);
		if (io == TlsConn::kError || io == TlsConn::kClosed)
			return err.ok() ? Status::Error(EPIPE, "channel flush") : err;
	}
	return Status::Ok();
}

bool PeerConn::Next(Record *r, Status *err)
{
	size_t used = 0;
	std::string why;
	Decoded d = Decode(reinterpret_cast<const uint8_t *>(in_.data()) + in_off_,
			   in_.size() - in_off_, r, &used, &why);
	if (d == Decoded::kCorrupt) {
		*err = Status::Error(EPROTO, "bad frame from the peer: " + why);
		return false;
	}
	if (d == Decoded::kShort) {
		in_.erase(0, in_off_);
		in_off_ = 0;
		return false;
	}
	in_off_ += used;
	return true;
}

} // namespace kvmft::hbd
