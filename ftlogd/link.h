// link.h - one authenticated FT logging connection as both roles use it:
// frames out (a buffer flushed as the socket allows), frames in (decoded
// and verified), and the heartbeat: a PING every interval, answered at
// once by a PONG that gives the round trip; the peer is declared dead
// when no frame at all arrived for the timeout. Log and ACK traffic
// counts as life too. Thread safety: one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "channel/tls.h"
#include "log/frame.h"

namespace kvmft::logd {

// Bytes waiting to be sent beyond which a PING is not answered: above
// what the primary ever queues (1 MiB of frames plus one frame of up to
// 1 MiB), so only a peer that does not read loses PONGs.
constexpr size_t kPongMaxUnsent = 4u << 20;

struct LinkTimes {
	unsigned hb_interval_ms;
	unsigned hb_timeout_ms;
};

class Link {
public:
	Link(std::unique_ptr<kvmft::TlsConn> conn, LinkTimes t);

	// Frames to send. out() allows building a DATA frame in place
	// (kvmft::BeginFrame / FinishFrame); it only ever grows at the end
	// until the next Pump().
	void Queue(uint8_t type, uint32_t stream, uint64_t seq, const void *p, size_t len);
	std::vector<uint8_t> *out() { return &out_; }
	size_t unsent() const { return wr_.size() - wr_off_ + out_.size(); }

	// Sends what it can, waits up to timeout_ms for the socket (or for
	// extra_fd, if >= 0, to become readable: *extra_ready, or to hang up:
	// *extra_hup, if given), reads what arrived. An error means the
	// connection is gone.
	kvmft::Status Pump(int extra_fd, int timeout_ms, bool *extra_ready,
			   bool *extra_hup = nullptr);
	// Sends what the socket takes now, without waiting or reading.
	kvmft::Status Send() { return Flush(); }
	// Next frame for the caller; PING and PONG are handled here.
	kvmft::FrameDecoder::Result Next(kvmft::Frame *f, kvmft::Status *err);
	// Sends a PING when one is due; an error if the peer has been silent
	// longer than the timeout (the message gives the silence in ms).
	kvmft::Status Heartbeat(uint64_t now_ns);
	// Milliseconds until the next heartbeat duty.
	int NextDueMs(uint64_t now_ns) const;

	uint64_t silent_ns(uint64_t now_ns) const { return now_ns - last_rx_ns_; }
	double rtt_ns() const { return rtt_ns_; } // moving average, 0 = none yet
	uint64_t rtt_min_ns() const { return rtt_min_ns_; }
	uint64_t bytes_in() const { return bytes_in_; }
	const kvmft::TlsConn &conn() const { return *conn_; }

private:
	kvmft::Status Flush();
	kvmft::Status Fill();
	void SetLowat(size_t missing);

	std::unique_ptr<kvmft::TlsConn> conn_;
	LinkTimes t_;
	kvmft::FrameDecoder dec_;
	// Two buffers, so sent bytes are never moved: wr_ is being written to
	// the socket from wr_off_; out_ collects frames queued meanwhile and
	// becomes wr_ (a swap) once wr_ is all sent.
	std::vector<uint8_t> out_, wr_;
	size_t wr_off_ = 0;
	uint64_t last_rx_ns_, last_ping_ns_ = 0, ping_seq_ = 0;
	double rtt_ns_ = 0;
	uint64_t rtt_min_ns_ = 0;
	uint64_t bytes_in_ = 0;
	size_t missing_ = 0; // bytes the decoder waits for (0: none or unknown)
	int lowat_ = 1;      // SO_RCVLOWAT of the socket
};

} // namespace kvmft::logd
