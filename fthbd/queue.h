// queue.h - the passive's safe queue (a file of records, record.h) and the
// failover rule that applies it to the protected directory (Documentation/fthbd.md, "Failover rule").
//
// The safe queue is append-only: Append() writes whole frames and
// fdatasync()s before returning, so a record is acknowledged only once it
// is on the passive's disk. A crash may leave a truncated or torn last
// frame; Scan() stops at the first frame that does not decode and says
// why, and nothing after it is trusted.
//
// Thread safety: a SafeQueue is used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "record.h"

namespace kvmft::hbd {

class SafeQueue {
public:
	// Opens (creating) the file; *last = seq of its last good record (0
	// if none). A damaged tail is cut off (logged in *note).
	static kvmft::Status Open(const std::string &path, SafeQueue *q, uint64_t *last, std::string *note);
	// Appends already encoded frames and makes them durable.
	kvmft::Status Append(const std::string &frames);
	uint64_t bytes() const { return bytes_; }
	void Close() { fd_.reset(); }

private:
	kvmft::UniqueFd fd_;
	uint64_t bytes_ = 0;
};

struct ScanResult {
	std::vector<Record> records; // the good prefix of the file, in file order
	uint64_t good_bytes = 0;     // length of that prefix
	std::string stop;            // empty: clean end; else why the scan stopped
};
kvmft::Status Scan(const std::string &path, ScanResult *out);
// The same over bytes in memory (tests).
void ScanBytes(const std::string &bytes, ScanResult *out);

// The failover rule: how many records of `recs`, from the first, may be
// applied given that every record up to after_seq already is. A record
// qualifies only if its seq is the next one and its completion status
// is present; the first that does not qualify ends the plan, and every
// record after it is discarded.
size_t PlanApply(const std::vector<Record> &recs, uint64_t after_seq);

// Replays one update on the directory dirfd as the active did it. A
// record whose status says it failed on the active changes nothing; a
// write applies as many bytes as the active wrote.
kvmft::Status ApplyRecord(int dirfd, const Record &r);

} // namespace kvmft::hbd
