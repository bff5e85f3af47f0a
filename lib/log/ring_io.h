// ring_io.h - how ftlogd moves records between a log ring and the wire.
//
// Primary: RingReader reads ahead of the ring's consumer position (its
// "send cursor") and gives the space back only when the secondary has
// acknowledged it. So the VMM's ring *is* the bounded log buffer and the
// retransmit buffer at once: unACKed records stay in the ring (a resumed
// connection re-reads them), and a secondary that lags fills the ring,
// which is what slows the VMM down (it must wait for RingFree() before it
// writes; Documentation/ftlogd.md "Flow control").
//
// Secondary: RingWriter stores received records byte for byte (original
// seq, pos and timestamps kept) into a ring of the same layout that the
// replaying VMM consumes. It never drops: a frame is written only when the
// whole frame fits, else the caller stops reading the connection.
//
// Thread safety: one reader or writer per ring, one thread at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "ring/ring.h"

namespace kvmft {

// Bytes the producer may still write (not counting padding it may need).
uint64_t RingFree(const RingView &v);
// True if a record of len bytes fits now, padding included.
bool RingFits(const RingView &v, uint32_t len);

class RingReader {
public:
	explicit RingReader(const RingView &v);

	// Appends whole records (PAD skipped) from the send cursor to out,
	// at most max_bytes (but always one record if any is there). Sets
	// *end to the ring position after the last record taken (PADs
	// included) and *last_ts to that record's ts_ns. Returns the number
	// of records; 0 if none. A malformed record is an error and nothing
	// past it is taken.
	Status Read(size_t max_bytes, std::vector<uint8_t> *out, uint64_t *end, uint64_t *last_ts,
		    size_t *nrec);
	// The secondary stored everything before pos: publish it as ack_pos
	// (the output rule) and release the space to the producer.
	void Ack(uint64_t pos);
	// Resend from the last acknowledged position (new connection).
	void Rewind()
	{
		sent_ = acked_;
		__atomic_store_n(&v_.ctl->read_pos, sent_, __ATOMIC_RELAXED);
	}
	bool HasUnsent() const;
	uint64_t acked() const { return acked_; }
	uint64_t sent() const { return sent_; }
	uint64_t produced() const;

private:
	RingView v_;
	uint64_t acked_; // == ctl->consumer_pos == ctl->ack_pos
	uint64_t sent_;
};

class RingWriter {
public:
	RingWriter(const RingView &v, int eventfd) : v_(v), efd_(eventfd) {}

	// True if records of these lengths, written in order, fit now.
	bool Fits(const std::vector<uint32_t> &lens) const;
	// Copies one record (Fits() checked by the caller); visible to the
	// consumer at the next Publish().
	void Put(const uint8_t *rec, uint32_t len);
	// Publishes what Put() wrote and wakes a sleeping consumer. Returns
	// the ring position after the last record.
	uint64_t Publish();
	// The same in two steps, so the caller can do something urgent in
	// between (ftlogd sends its ACK before the wakeup's syscall):
	// PublishQuiet() makes the records visible, Wake() then wakes the
	// consumer if it sleeps. A consumer that goes to sleep in between
	// sees the records (it rechecks producer_pos after setting its
	// flag), so only the wakeup is late, never lost, provided Wake()
	// follows every PublishQuiet().
	uint64_t PublishQuiet();
	void Wake();
	uint64_t consumed() const;

private:
	RingView v_;
	int efd_;
	uint64_t pos_ = 0;
	bool init_ = false;
	bool wake_ = false; // published, Wake() not yet called
};

} // namespace kvmft
