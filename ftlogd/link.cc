// link.cc - frame I/O and heartbeats on one FT logging connection.
#include "link.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "ring/ring.h"

namespace kvmft::logd {

using kvmft::FrameDecoder;
using kvmft::Status;
using kvmft::TlsConn;

Link::Link(std::unique_ptr<TlsConn> conn, LinkTimes t)
	: conn_(std::move(conn)), t_(t), last_rx_ns_(kvmft::MonotonicNs())
{
}

void Link::Queue(uint8_t type, uint32_t stream, uint64_t seq, const void *p, size_t len)
{
	kvmft::AppendFrame(&out_, type, stream, seq, p, len);
}

Status Link::Flush()
{
	for (;;) {
		if (wr_off_ == wr_.size()) {
			if (out_.empty())
				break;
			wr_.swap(out_);
			out_.clear(); // keeps its capacity
			wr_off_ = 0;
		}
		// A retry after kAgain passes the same bytes again, as TLS
		// requires: wr_ does not change until all of it is sent.
		size_t n = 0;
		Status err;
		TlsConn::Io r = conn_->Write(wr_.data() + wr_off_, wr_.size() - wr_off_, &n, &err);
		if (r == TlsConn::kAgain)
			break;
		if (r == TlsConn::kClosed)
			return Status::Error(ECONNRESET, "peer closed the connection");
		if (r != TlsConn::kOk)
			return err;
		wr_off_ += n;
	}
	// Bytes the TLS layer buffered when the socket was full.
	Status err;
	TlsConn::Io r = conn_->Flush(&err);
	if (r == TlsConn::kError)
		return err;
	return Status::Ok();
}

Status Link::Fill()
{
	// TLS hands out at most one 16 KiB record per read; decrypt straight
	// into the decoder. At most 256 KiB per call so the caller gets to
	// store and ACK early.
	constexpr size_t kRecord = 16 * 1024 + 256;
	for (int i = 0; i < 16; i++) {
		size_t n = 0;
		Status err;
		TlsConn::Io r = conn_->Read(dec_.Reserve(kRecord), kRecord, &n, &err);
		dec_.Commit(n);
		if (n)
			missing_ = 0; // unknown until Next() looks again
		if (r == TlsConn::kAgain)
			break;
		if (r == TlsConn::kClosed)
			return Status::Error(ECONNRESET, "peer closed the connection");
		if (r != TlsConn::kOk)
			return err;
		bytes_in_ += n;
	}
	return Status::Ok();
}

Status Link::Pump(int extra_fd, int timeout_ms, bool *extra_ready, bool *extra_hup)
{
	*extra_ready = false;
	if (extra_hup)
		*extra_hup = false;
	Status st = Flush();
	if (!st.ok())
		return st;
	pollfd p[2];
	short ev = POLLIN;
	if (unsent() || conn_->want_write())
		ev |= POLLOUT;
	p[0] = pollfd{conn_->fd(), ev, 0};
	p[1] = pollfd{extra_fd, POLLIN, 0};
	if (conn_->pending() || (dec_.buffered() >= kvmft::kFrameHdrLen && !missing_))
		timeout_ms = 0;
	SetLowat(conn_->pending() ? 0 : missing_);
	int r = poll(p, extra_fd >= 0 ? 2 : 1, timeout_ms);
	if (r < 0 && errno != EINTR)
		return Status::Errno("poll");
	if (r > 0 && extra_fd >= 0 && (p[1].revents & POLLIN))
		*extra_ready = true;
	if (r > 0 && extra_fd >= 0 && extra_hup && (p[1].revents & (POLLHUP | POLLERR | POLLNVAL)))
		*extra_hup = true;
	st = Fill();
	if (!st.ok())
		return st;
	return Flush();
}

void Link::SetLowat(size_t missing)
{
	// Wake up only when the frame we wait for can be complete: that needs
	// at least `missing` more plaintext bytes, of which OpenSSL may hold
	// up to one partial record already, so at least missing - kRecordMax
	// bytes must come from the socket. Small frames (ACKs, heartbeats,
	// light load) keep the low-water mark at 1: no added latency.
	constexpr size_t kRecordMax = 16 * 1024;
	int want = missing > kRecordMax ? static_cast<int>(missing - kRecordMax) : 1;
	if (want == lowat_)
		return;
	if (setsockopt(conn_->fd(), SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want)) == 0)
		lowat_ = want;
}

FrameDecoder::Result Link::Next(kvmft::Frame *f, Status *err)
{
	for (;;) {
		FrameDecoder::Result r = dec_.Next(f, err);
		missing_ = r == FrameDecoder::kNeedMore ? dec_.missing() : 0;
		if (r != FrameDecoder::kFrame)
			return r;
		uint64_t now = kvmft::MonotonicNs();
		last_rx_ns_ = now;
		if (f->hdr.type == kvmft::kFramePing) {
			// A peer that sends PINGs and never reads would grow out_
			// without end: past kPongMaxUnsent the PING goes unanswered.
			if (unsent() < kPongMaxUnsent)
				Queue(kvmft::kFramePong, 0, f->hdr.seq, f->payload, f->hdr.len);
			continue;
		}
		if (f->hdr.type == kvmft::kFramePong) {
			kvmft::PingPayload pp{};
			if (f->hdr.len == sizeof(pp) && f->hdr.seq == ping_seq_) {
				std::memcpy(&pp, f->payload, sizeof(pp));
				uint64_t rtt = now - pp.sent_ns;
				rtt_ns_ = rtt_ns_ ? rtt_ns_ + (static_cast<double>(rtt) - rtt_ns_) / 8
						  : static_cast<double>(rtt);
				rtt_min_ns_ = rtt_min_ns_ ? std::min(rtt_min_ns_, rtt) : rtt;
			}
			continue;
		}
		return r;
	}
}

Status Link::Heartbeat(uint64_t now)
{
	uint64_t silent = now - last_rx_ns_;
	if (silent > t_.hb_timeout_ms * 1000000ull)
		return Status::Error(ETIMEDOUT, "no frame from the peer for " +
							std::to_string(silent / 1000000) + " ms (timeout " +
							std::to_string(t_.hb_timeout_ms) + " ms)");
	if (now - last_ping_ns_ >= t_.hb_interval_ms * 1000000ull) {
		kvmft::PingPayload pp{now, 0};
		Queue(kvmft::kFramePing, 0, ++ping_seq_, &pp, sizeof(pp));
		last_ping_ns_ = now;
	}
	return Status::Ok();
}

int Link::NextDueMs(uint64_t now) const
{
	uint64_t due = last_ping_ns_ + t_.hb_interval_ms * 1000000ull;
	if (due <= now)
		return 0;
	return static_cast<int>((due - now) / 1000000 + 1);
}

} // namespace kvmft::logd
