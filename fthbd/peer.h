// peer.h - one connection of the channel to the peer server: mutual TLS
// (lib/channel) carrying record frames (record.h) both ways.
//
// Thread safety: used by the link thread only.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "channel/tls.h"
#include "record.h"

namespace kvmft::hbd {

class PeerConn {
public:
	explicit PeerConn(std::unique_ptr<kvmft::TlsConn> tls) : tls_(std::move(tls)) {}
	void Send(const Record &r) { Encode(r, &out_); }
	void SendFrames(const std::string &f) { out_ += f; }
	size_t unsent() const { return out_.size(); }
	// Waits up to timeout_ms (or until wake_fd is readable) for the
	// socket, then moves what it can both ways. Error: the connection is
	// dead.
	kvmft::Status Pump(int timeout_ms, int wake_fd);
	// The next complete frame received; false if none yet. A corrupt
	// frame is an error.
	bool Next(Record *r, kvmft::Status *err);

private:
	std::unique_ptr<kvmft::TlsConn> tls_;
	std::string in_, out_;
	size_t in_off_ = 0;
};

} // namespace kvmft::hbd
