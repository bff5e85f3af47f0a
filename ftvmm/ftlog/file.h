// file.h - FT log, snapshot and delta files (uapi/linux/kvm_ft_vmm.h,
// Documentation/log-format.md): a header, then CRC-framed records.
//
#pragma once

#include <linux/kvm_ft_vmm.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "ftlog/sink.h"

namespace kvmft::vmm {

uint64_t Fnv1a64(const void *data, size_t len, uint64_t h = 0xcbf29ce484222325ULL);

class LogWriter : public LogSink {
public:
	~LogWriter() override;
	// Creates (truncates) path and writes the header.
	static Status Create(const std::string &path, const kvm_ft_vmm_file_hdr &hdr,
			     std::unique_ptr<LogWriter> *out);
	Status Append(void *rec, uint32_t len) override;
	Status Flush() override;
	uint64_t tag() const override { return seq_; }
	uint64_t records() const { return seq_; }
	uint64_t bytes() const { return bytes_; }

private:
	std::string path_;
	UniqueFd fd_;
	std::vector<uint8_t> buf_;
	uint64_t seq_ = 0;
	uint64_t bytes_ = 0;
};

// Reads a whole file into memory and walks its records.
class LogReader {
public:
	static Status Open(const std::string &path, LogReader *out);
	// From a buffer (tests); the buffer is copied.
	static Status FromBytes(std::vector<uint8_t> bytes, const std::string &name,
				LogReader *out);
	const kvm_ft_vmm_file_hdr &header() const { return hdr_; }
	// Next record: *rec points into the reader, valid while it lives.
	// *rec = nullptr at a clean end of file. A truncated or corrupt
	// frame is an error naming the file offset and record number.
	Status Next(const kvm_ft_rec_hdr **rec);
	// Look at the next record without consuming it (nullptr at the end).
	Status Peek(const kvm_ft_rec_hdr **rec);
	// A file ending inside a frame (a writer that died mid-record) reads
	// as a clean end instead of an error; torn() says it happened.
	void set_allow_torn_tail(bool allow) { allow_torn_ = allow; }
	bool torn() const { return torn_; }
	uint64_t offset() const { return off_; }
	uint64_t records() const { return nrec_; }
	const std::string &name() const { return name_; }

private:
	Status Parse();
	Status Torn(const std::string &what);
	std::string name_;
	std::vector<uint8_t> data_;
	kvm_ft_vmm_file_hdr hdr_{};
	size_t off_ = 0;
	uint64_t nrec_ = 0;
	const kvm_ft_rec_hdr *peeked_ = nullptr;
	size_t peeked_next_ = 0;
	bool allow_torn_ = false, torn_ = false;
};

// Fills the fixed fields of a file header (magic, version, crc later).
kvm_ft_vmm_file_hdr MakeFileHeader(uint32_t kind, uint64_t mem_bytes,
				   uint64_t image_hash, uint64_t parent_id);

} // namespace kvmft::vmm
