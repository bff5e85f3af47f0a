// frame.h - the FT log wire frame: what ftlogd sends over the FT logging
// connection (log records one way, ACKs the other, heartbeats both ways).
// Byte layout, field by field, and the rules a receiver applies:
// Documentation/wire-protocol.md.
//
//   0       4    5    6       8       12      16              24      28      32
//   +-------+----+----+-------+-------+-------+---------------+-------+-------+
//   | magic |ver |type| flags |  len  |stream |      seq      |pay_crc|hdr_crc|
//   +-------+----+----+-------+-------+-------+---------------+-------+-------+
//   | payload: len bytes (DATA: whole kvm_ft_rec records, 8-byte aligned)     |
//
// All fields little endian. hdr_crc = CRC32C(bytes 0..27), pay_crc =
// CRC32C(payload). A receiver checks the header before trusting len, so a
// corrupt length is caught without reading a byte of payload.
//
// Thread safety: none; one encoder and one decoder per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace kvmft {

constexpr uint32_t kFrameMagic = 0x474c5446; // "FTLG" in memory order
constexpr uint8_t kFrameVersion = 1;
constexpr uint32_t kFrameHdrLen = 32;
constexpr uint32_t kFrameMaxPayload = 1u << 20; // bytes

enum FrameType : uint8_t {
	kFrameHello = 1,   // primary -> secondary: session, geometry (JSON)
	kFrameWelcome = 2, // secondary -> primary: last stored seq (JSON)
	kFrameData = 3,    // primary -> secondary: records of one ring
	kFrameAck = 4,     // secondary -> primary: cumulative stored seq
	kFramePing = 5,    // heartbeat, either way
	kFramePong = 6,    // heartbeat answer, echoes the ping
	kFrameBye = 7,     // orderly close with a reason (text)
	kFrameTypeLast = kFrameBye,
};

const char *FrameTypeName(uint8_t type);

struct FrameHdr {
	uint32_t magic;
	uint8_t version;
	uint8_t type;     // FrameType
	uint16_t flags;   // zero (reserved)
	uint32_t len;     // payload bytes
	uint32_t stream;  // DATA: ring (vCPU) index; else 0
	uint64_t seq;     // DATA: frame number from 1; ACK: stored seq;
			  // PING/PONG: ping number; else 0
	uint32_t pay_crc; // CRC32C of the payload
	uint32_t hdr_crc; // CRC32C of the 28 bytes before it
};
static_assert(sizeof(FrameHdr) == kFrameHdrLen);

// Payload of ACK frames (after the header, 16 bytes).
struct AckPayload {
	uint64_t consumed_seq; // highest DATA seq the replaying VMM has read
	uint64_t reserved;     // zero
};
// Payload of PING and PONG frames (a PONG echoes its PING).
struct PingPayload {
	uint64_t sent_ns; // sender's CLOCK_MONOTONIC at send, ns
	uint64_t reserved;
};

// Appends one frame to out. For DATA built in place: BeginFrame reserves
// the header, the caller appends payload bytes, FinishFrame fills the
// header (and CRCs) over them.
size_t BeginFrame(std::vector<uint8_t> *out);
void FinishFrame(std::vector<uint8_t> *out, size_t start, uint8_t type, uint32_t stream,
		 uint64_t seq);
void AppendFrame(std::vector<uint8_t> *out, uint8_t type, uint32_t stream, uint64_t seq,
		 const void *payload, size_t len);

// A decoded frame; payload points into the decoder's buffer and stays
// valid until the next call to Next() or Feed().
struct Frame {
	FrameHdr hdr;
	const uint8_t *payload;
};

// Cuts a byte stream into verified frames. After an error the decoder
// stays failed: a stream that lost framing cannot be trusted again, the
// connection must be closed (the session resumes on a new one).
class FrameDecoder {
public:
	enum Result { kNeedMore, kFrame, kError };
	void Feed(const void *p, size_t n);
	// Zero-copy feeding: Reserve() returns room for n bytes at the end of
	// the buffer; Commit() adds the m <= n bytes written there.
	uint8_t *Reserve(size_t n);
	void Commit(size_t m);
	Result Next(Frame *f, Status *err);
	size_t buffered() const { return buf_.size() - off_; }
	// After Next() said kNeedMore: bytes still missing before it can
	// return the next frame (its header verified if it is all there).
	size_t missing() const { return missing_; }

private:
	// A byte that is not zeroed when the vector grows (Reserve() is on
	// the receive path of every byte).
	struct Byte {
		uint8_t v;
		Byte() {} // NOLINT: leave uninitialised
	};
	uint8_t *data() { return reinterpret_cast<uint8_t *>(buf_.data()); }
	std::vector<Byte> buf_;
	size_t off_ = 0;
	size_t used_ = 0; // buf_ size before the last Reserve()
	size_t missing_ = 0;
	bool failed_ = false;
};

// Verifies one header (magic, version, type, flags, len bound, hdr_crc).
Status CheckFrameHdr(const FrameHdr &h);

// Orders DATA frames: each must carry seq == last + 1. Tells a replayed
// frame (seq <= last) from a gap or reordering (seq > last + 1).
class SeqCheck {
public:
	explicit SeqCheck(uint64_t last = 0) : last_(last) {}
	Status Accept(uint64_t seq);
	uint64_t last() const { return last_; }

private:
	uint64_t last_;
};

// Walks the kvm_ft records in a DATA payload: each whole, 8-byte aligned,
// len >= the record header, a known type, on ring `stream`, and with the
// record sequence number the ring expects (*next_rec_seq, advanced; a
// LOST record accounts for its count). fn sees each record. Stops at the
// first bad record with an error naming it.
constexpr uint64_t kRecSeqUnset = ~0ull; // first record sets the base
using RecordFn = std::function<void(const uint8_t *rec, uint32_t len)>;
Status WalkRecords(const uint8_t *p, size_t len, uint32_t stream, uint64_t *next_rec_seq,
		   const RecordFn &fn);

} // namespace kvmft
