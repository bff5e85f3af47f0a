// guest_run.cc - test helpers (guest_run.h).
#include "guest_run.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "log/crc32c.h"
#include "vm/loader.h"
#include "ftlog/file.h"

namespace kvmft::vmm::test {

void RequireKvm()
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "SKIP: /dev/kvm unavailable: %s\n", strerror(errno));
		exit(77);
	}
	close(fd);
}

std::string GuestPath(const std::string &name)
{
	// $FTVMM_GUEST_DIR: where a copy of the guests is (the test VM).
	const char *dir = getenv("FTVMM_GUEST_DIR");
	return std::string(dir && *dir ? dir : FTVMM_GUEST_DIR) + "/" + name + ".elf";
}

std::string TempPath(const std::string &tag)
{
	return "/tmp/ftvmm-test-" + std::to_string(getpid()) + "-" + tag;
}

Booted::~Booted()
{
	m.reset();
	if (console_fd >= 0)
		close(console_fd);
}

std::string Booted::Output() const
{
	m->console().Flush();
	std::string s;
	char buf[4096];
	off_t off = 0;
	ssize_t r;
	while ((r = pread(console_fd, buf, sizeof(buf), off)) > 0) {
		s.append(buf, r);
		off += r;
	}
	return s;
}

Status Boot(const std::string &guest, bool dirty_log, Booted *b, uint64_t mem,
	    const std::string &disk, unsigned vcpus, UniqueFd net_fd)
{
	b->console_fd = memfd_create("console", MFD_CLOEXEC);
	if (b->console_fd < 0)
		return Status::Errno("memfd_create");
	MachineConfig cfg;
	cfg.mem_bytes = mem;
	cfg.dirty_log = dirty_log;
	cfg.console_fd = b->console_fd;
	cfg.disk = disk;
	cfg.vcpus = vcpus;
	cfg.net_fd = std::move(net_fd);
	Status s = Machine::Create(std::move(cfg), &b->m);
	if (!s.ok())
		return s;
	return BootImage(b->m->vm(), GuestPath(guest), false, &b->image_hash);
}

namespace {
void Finish(Booted &b, RecordReplay &e, GuestRun *r)
{
	r->out = b.Output();
	r->mem_hash = b.m->vm().MemHash();
	r->st = e.stats();
}
} // namespace

GuestRun RecordGuest(const std::string &guest, const std::string &log_path,
		     const ModeConfig &cfg, const std::string &disk)
{
	GuestRun r;
	Booted b;
	// As ftvmm run: no dirty log; the engine turns it on at the first
	// checkpoint.
	if (!(r.s = Boot(guest, false, &b, 64ULL << 20, disk)).ok())
		return r;
	std::unique_ptr<LogWriter> w;
	if (!log_path.empty()) {
		auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, b.m->vm().mem_bytes(), b.image_hash, 0);
		if (!(r.s = LogWriter::Create(log_path, hdr, &w)).ok())
			return r;
	}
	RecordReplay e(b.m.get(), cfg);
	e.SetRecord(w.get());
	r.s = e.Run(&r.status);
	Finish(b, e, &r);
	return r;
}

GuestRun ReplayGuest(const std::string &guest, const std::string &log_path,
		     const ModeConfig &cfg, const std::string &disk)
{
	GuestRun r;
	LogReader reader;
	if (!(r.s = LogReader::Open(log_path, &reader)).ok())
		return r;
	Booted b;
	if (!(r.s = Boot(guest, false, &b, reader.header().mem_bytes, disk)).ok())
		return r;
	FileSource src(&reader);
	RecordReplay e(b.m.get(), cfg);
	e.SetReplay(&src);
	r.s = e.Run(&r.status);
	Finish(b, e, &r);
	return r;
}

std::vector<uint8_t> ReadFile(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

void WriteFile(const std::string &path, const std::vector<uint8_t> &b)
{
	std::ofstream f(path, std::ios::binary | std::ios::trunc);
	f.write(reinterpret_cast<const char *>(b.data()), b.size());
}

std::vector<FrameRef> Frames(std::vector<uint8_t> &log)
{
	std::vector<FrameRef> v;
	size_t off = sizeof(kvm_ft_vmm_file_hdr);
	while (off + sizeof(kvm_ft_vmm_frame) <= log.size()) {
		kvm_ft_vmm_frame f;
		memcpy(&f, &log[off], sizeof(f));
		v.push_back({off, reinterpret_cast<kvm_ft_rec_hdr *>(&log[off + sizeof(f)])});
		off += sizeof(f) + f.len;
	}
	return v;
}

void FixCrc(std::vector<uint8_t> &log, const FrameRef &f)
{
	kvm_ft_vmm_frame fr;
	memcpy(&fr, &log[f.off], sizeof(fr));
	fr.crc = Crc32c(0, f.rec, fr.len);
	memcpy(&log[f.off], &fr, sizeof(fr));
}

} // namespace kvmft::vmm::test
