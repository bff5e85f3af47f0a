// queue.cc - safe queue file, failover plan, apply (queue.h).
#include "queue.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace kvmft::hbd {

using kvmft::Status;
using kvmft::UniqueFd;

namespace {

// path relative to the protected directory ("" is the directory itself)
std::string Rel(const std::string &p)
{
	size_t i = p.find_first_not_of('/');
	return i == std::string::npos ? "." : p.substr(i);
}

Status ReadAll(int fd, std::string *out)
{
	char buf[1 << 16];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0)
			return Status::Errno("read");
		if (n == 0)
			return Status::Ok();
		out->append(buf, n);
	}
}

} // namespace

void ScanBytes(const std::string &bytes, ScanResult *out)
{
	const uint8_t *p = reinterpret_cast<const uint8_t *>(bytes.data());
	size_t off = 0;
	while (off < bytes.size()) {
		Record r;
		size_t used = 0;
		std::string why;
		Decoded d = Decode(p + off, bytes.size() - off, &r, &used, &why);
		if (d == Decoded::kShort) {
			out->stop = "truncated record at offset " + std::to_string(off);
			break;
		}
		if (d == Decoded::kCorrupt) {
			out->stop = why + " at offset " + std::to_string(off);
			break;
		}
		if (r.op < Op::kWrite || r.op > Op::kUpdateLast) {
			out->stop = "not an update record at offset " + std::to_string(off);
			break;
		}
		out->records.push_back(std::move(r));
		off += used;
	}
	out->good_bytes = off;
}

Status Scan(const std::string &path, ScanResult *out)
{
	UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd.valid())
		return Status::Errno("open safe queue " + path);
	std::string bytes;
	Status st = ReadAll(fd.get(), &bytes);
	if (!st.ok())
		return st.Wrap("safe queue " + path);
	ScanBytes(bytes, out);
	return Status::Ok();
}

Status SafeQueue::Open(const std::string &path, SafeQueue *q, uint64_t *last, std::string *note)
{
	ScanResult sr;
	UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
	if (!fd.valid())
		return Status::Errno("open safe queue " + path);
	Status st = Scan(path, &sr);
	if (!st.ok())
		return st;
	*last = sr.records.empty() ? 0 : sr.records.back().seq;
	if (!sr.stop.empty()) {
		*note = "safe queue " + path + ": " + sr.stop + "; cut there";
		if (ftruncate(fd.get(), static_cast<off_t>(sr.good_bytes)) < 0)
			return Status::Errno("truncate safe queue " + path);
	}
	if (lseek(fd.get(), 0, SEEK_END) < 0)
		return Status::Errno("seek safe queue " + path);
	q->fd_ = std::move(fd);
	q->bytes_ = sr.good_bytes;
	return Status::Ok();
}

Status SafeQueue::Append(const std::string &frames)
{
	size_t off = 0;
	while (off < frames.size()) {
		ssize_t n = write(fd_.get(), frames.data() + off, frames.size() - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return Status::Errno("write safe queue");
		}
		off += n;
	}
	if (fdatasync(fd_.get()) < 0)
		return Status::Errno("fdatasync safe queue");
	bytes_ += frames.size();
	return Status::Ok();
}

size_t PlanApply(const std::vector<Record> &recs, uint64_t after_seq)
{
	size_t n = 0;
	for (const Record &r : recs) {
		if (r.seq != after_seq + 1 || !r.has_status)
			break;
		after_seq = r.seq;
		n++;
	}
	return n;
}

Status ApplyRecord(int dirfd, const Record &r)
{
	if (r.status < 0)
		return Status::Ok();
	std::string p = Rel(r.path), p2 = Rel(r.path2);
	auto fail = [&](const char *what) {
		return Status::Errno(std::string("apply ") + what + " " + r.path + " (seq " +
				     std::to_string(r.seq) + ")");
	};
	int rc = 0;
	switch (r.op) {
	case Op::kWrite:
	case Op::kTruncate:
	case Op::kFsync: {
		UniqueFd fd(openat(dirfd, p.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
		if (!fd.valid())
			return fail(OpName(r.op));
		if (r.op == Op::kWrite) {
			size_t len = std::min<size_t>(r.data.size(), static_cast<size_t>(r.status));
			if (pwrite(fd.get(), r.data.data(), len, static_cast<off_t>(r.arg)) !=
			    static_cast<ssize_t>(len))
				return fail("write");
		} else if (r.op == Op::kTruncate) {
			rc = ftruncate(fd.get(), static_cast<off_t>(r.arg));
		} else {
			rc = fdatasync(fd.get());
		}
		break;
	}
	case Op::kCreate: {
		UniqueFd fd(openat(dirfd, p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
				   static_cast<mode_t>(r.arg)));
		if (!fd.valid())
			return fail("create");
		break;
	}
	case Op::kRename:
		rc = renameat2(dirfd, p.c_str(), dirfd, p2.c_str(), static_cast<unsigned>(r.arg));
		break;
	case Op::kUnlink: rc = unlinkat(dirfd, p.c_str(), 0); break;
	case Op::kMkdir: rc = mkdirat(dirfd, p.c_str(), static_cast<mode_t>(r.arg)); break;
	case Op::kRmdir: rc = unlinkat(dirfd, p.c_str(), AT_REMOVEDIR); break;
	case Op::kChmod: rc = fchmodat(dirfd, p.c_str(), static_cast<mode_t>(r.arg), 0); break;
	case Op::kSymlink: rc = symlinkat(r.path.c_str(), dirfd, p2.c_str()); break;
	case Op::kLink: rc = linkat(dirfd, p.c_str(), dirfd, p2.c_str(), 0); break;
	default:
		return Status::Error(EINVAL, "apply: record " + std::to_string(r.seq) +
						     " is not an update");
	}
	return rc < 0 ? fail(OpName(r.op)) : Status::Ok();
}

} // namespace kvmft::hbd
