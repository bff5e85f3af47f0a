// file.cc - log file writer and reader (file.h).
#include "ftlog/file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>

#include "log/crc32c.h"

namespace kvmft::vmm {

namespace {
constexpr size_t kFlushBytes = 1 << 16;

Status WriteAll(int fd, const uint8_t *p, size_t n, const std::string &path)
{
	while (n) {
		ssize_t r = ::write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return Status::Errno("write " + path);
		p += r;
		n -= r;
	}
	return Status::Ok();
}
} // namespace

uint64_t Fnv1a64(const void *data, size_t len, uint64_t h)
{
	const uint8_t *p = static_cast<const uint8_t *>(data);
	while (len--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

kvm_ft_vmm_file_hdr MakeFileHeader(uint32_t kind, uint64_t mem_bytes,
				   uint64_t image_hash, uint64_t parent_id)
{
	kvm_ft_vmm_file_hdr h{};
	h.magic = KVM_FT_VMM_FILE_MAGIC;
	h.version = KVM_FT_VMM_FILE_VERSION;
	h.kind = kind;
	h.mem_bytes = mem_bytes;
	h.nr_vcpus = 1;
	h.page_size = 4096;
	h.image_hash = image_hash;
	if (getrandom(&h.id, sizeof(h.id), 0) != sizeof(h.id))
		h.id = Fnv1a64(&h, sizeof(h)) ^ static_cast<uint64_t>(getpid());
	h.parent_id = parent_id;
	return h;
}

LogWriter::~LogWriter()
{
	Flush();
}

Status LogWriter::Create(const std::string &path, const kvm_ft_vmm_file_hdr &hdr,
			 std::unique_ptr<LogWriter> *out)
{
	int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return Status::Errno("create " + path);
	auto w = std::unique_ptr<LogWriter>(new LogWriter());
	w->path_ = path;
	w->fd_.reset(fd);
	kvm_ft_vmm_file_hdr h = hdr;
	h.hdr_crc = Crc32c(0, &h, offsetof(kvm_ft_vmm_file_hdr, hdr_crc));
	const uint8_t *p = reinterpret_cast<const uint8_t *>(&h);
	w->buf_.assign(p, p + sizeof(h));
	*out = std::move(w);
	return Status::Ok();
}

Status LogWriter::Append(void *rec, uint32_t len)
{
	auto *h = static_cast<kvm_ft_rec_hdr *>(rec);
	h->seq = seq_++;
	kvm_ft_vmm_frame f{len, Crc32c(0, rec, len)};
	const uint8_t *fp = reinterpret_cast<const uint8_t *>(&f);
	const uint8_t *rp = static_cast<const uint8_t *>(rec);
	buf_.insert(buf_.end(), fp, fp + sizeof(f));
	buf_.insert(buf_.end(), rp, rp + len);
	bytes_ += sizeof(f) + len;
	if (buf_.size() >= kFlushBytes)
		return Flush();
	return Status::Ok();
}

Status LogWriter::Flush()
{
	if (buf_.empty() || !fd_.valid())
		return Status::Ok();
	Status s = WriteAll(fd_.get(), buf_.data(), buf_.size(), path_);
	buf_.clear();
	return s;
}

Status LogReader::Open(const std::string &path, LogReader *out)
{
	UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd.valid())
		return Status::Errno("open " + path);
	struct stat st;
	if (fstat(fd.get(), &st) < 0)
		return Status::Errno("stat " + path);
	std::vector<uint8_t> bytes(st.st_size);
	size_t got = 0;
	while (got < bytes.size()) {
		ssize_t r = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return Status::Errno("read " + path);
		if (r == 0)
			break;
		got += r;
	}
	bytes.resize(got);
	return FromBytes(std::move(bytes), path, out);
}

Status LogReader::FromBytes(std::vector<uint8_t> bytes, const std::string &name,
			    LogReader *out)
{
	out->name_ = name;
	out->data_ = std::move(bytes);
	return out->Parse();
}

Status LogReader::Parse()
{
	if (data_.size() < sizeof(hdr_))
		return Status::Error(EINVAL, name_ + ": too short for a log header");
	memcpy(&hdr_, data_.data(), sizeof(hdr_));
	if (hdr_.magic != KVM_FT_VMM_FILE_MAGIC)
		return Status::Error(EINVAL, name_ + ": not a kvm-ft log (bad magic)");
	if (hdr_.hdr_crc != Crc32c(0, &hdr_, offsetof(kvm_ft_vmm_file_hdr, hdr_crc)))
		return Status::Error(EINVAL, name_ + ": header CRC mismatch");
	if (hdr_.version != KVM_FT_VMM_FILE_VERSION)
		return Status::Error(EINVAL, fmt::format("{}: unsupported version {}",
							 name_, hdr_.version));
	if (hdr_.kind == 0 || hdr_.kind >= __KVM_FT_FILE_LAST || hdr_.flags ||
	    hdr_.page_size != 4096 || hdr_.nr_vcpus < 1 || hdr_.nr_vcpus > 8)
		return Status::Error(EINVAL, name_ + ": unsupported header fields");
	off_ = sizeof(hdr_);
	return Status::Ok();
}

Status LogReader::Torn(const std::string &what)
{
	if (!allow_torn_)
		return Status::Error(EINVAL, what);
	torn_ = true;
	data_.resize(off_); // the torn tail reads as the end from now on
	return Status::Ok();
}

Status LogReader::Peek(const kvm_ft_rec_hdr **rec)
{
	if (peeked_ || peeked_next_) {
		*rec = peeked_;
		return Status::Ok();
	}
	*rec = nullptr;
	if (off_ == data_.size())
		return Status::Ok();
	auto where = fmt::format("{}: record {} at offset {}", name_, nrec_, off_);
	if (data_.size() - off_ < sizeof(kvm_ft_vmm_frame))
		return Torn(where + ": truncated frame header");
	kvm_ft_vmm_frame f;
	memcpy(&f, &data_[off_], sizeof(f));
	size_t body = off_ + sizeof(f);
	if (f.len < sizeof(kvm_ft_rec_hdr) || f.len % 8)
		return Status::Error(EINVAL, where + fmt::format(": bad length {}", f.len));
	if (data_.size() - body < f.len)
		return Torn(where + ": truncated record");
	if (Crc32c(0, &data_[body], f.len) != f.crc)
		return Status::Error(EINVAL, where + ": CRC mismatch");
	auto *h = reinterpret_cast<const kvm_ft_rec_hdr *>(&data_[body]);
	if (h->len != f.len)
		return Status::Error(EINVAL, where + ": header length disagrees with frame");
	peeked_ = h;
	peeked_next_ = body + f.len;
	*rec = h;
	return Status::Ok();
}

Status LogReader::Next(const kvm_ft_rec_hdr **rec)
{
	Status s = Peek(rec);
	if (!s.ok() || !*rec)
		return s;
	off_ = peeked_next_;
	peeked_ = nullptr;
	peeked_next_ = 0;
	nrec_++;
	return Status::Ok();
}

} // namespace kvmft::vmm
