// source.h - where a replayer reads records from: a file (FileSource)
// or a live ring (RingSource, ring_source.h).
#pragma once

#include <linux/kvm_ft.h>

#include "base/status.h"
#include "ftlog/file.h"

namespace kvmft::vmm {

// A record returned stays valid as long as the source lives.
class RecordSource {
public:
	virtual ~RecordSource() = default;
	virtual Status Next(const kvm_ft_rec_hdr **rec) = 0;  // nullptr at end
	virtual Status Peek(const kvm_ft_rec_hdr **rec) = 0;
};

class FileSource : public RecordSource {
public:
	explicit FileSource(LogReader *r) : r_(r) {}
	Status Next(const kvm_ft_rec_hdr **rec) override { return r_->Next(rec); }
	Status Peek(const kvm_ft_rec_hdr **rec) override { return r_->Peek(rec); }

private:
	LogReader *r_;
};

} // namespace kvmft::vmm
