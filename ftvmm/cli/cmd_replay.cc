// cmd_replay.cc - ftvmm replay (a log file or a live ring, go-live) and ftvmm restore.
#include <memory>
#include <fmt/format.h>

#include "checkpoint/checkpoint.h"
#include "cli/cli.h"
#include "cli/stats_json.h"
#include "ftlog/file.h"
#include "ftlog/ftlogd_link.h"
#include "ftlog/ring_source.h"
#include "lock/holder.h"
#include "machine/machine.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace kvmft::vmm::cli {

namespace {

// A live log starts with VMM_START: the primary's RAM, image and disk
// must be ours, or the replay would diverge at some later exit (or,
// worse, not at all for a while). No record at all: the primary never
// started; the engine sees an empty log.
Status CheckLiveStart(const Options &o, Machine &m, uint64_t hash, RecordSource *src)
{
	const kvm_ft_rec_hdr *r;
	Status s = src->Peek(&r);
	if (!s.ok() || !r)
		return s;
	const auto *st = reinterpret_cast<const kvm_ft_vmm_start *>(r);
	if (r->type != KVM_FT_REC_VMM_START || r->len != sizeof(*st) || r->pos ||
	    (st->flags & ~KVM_FT_START_NET))
		return Status::Error(EINVAL, fmt::format("session {}: the live log does not start "
			"with a VMM_START record (record type {:#x})", o.session, r->type));
	if (st->image_hash != hash)
		return Status::Error(EINVAL, fmt::format("session {}: the primary runs another "
			"image than {}", o.session, o.image));
	if (st->mem_bytes != m.vm().mem_bytes())
		return Status::Error(EINVAL, fmt::format("session {}: the primary has {} bytes of "
			"RAM, this VM {} (use --mem {})", o.session, st->mem_bytes,
			m.vm().mem_bytes(), st->mem_bytes));
	if (st->disk_bytes != DiskBytes(m) || st->nr_vcpus != m.vm().nr_vcpus())
		return Status::Error(EINVAL, fmt::format("session {}: the primary has a disk of {} "
			"bytes and {} vCPUs, this VM {} and {} (use --vcpus {})", o.session,
			st->disk_bytes, st->nr_vcpus, DiskBytes(m), m.vm().nr_vcpus(),
			st->nr_vcpus));
	if (!(st->flags & KVM_FT_START_NET) != !m.net())
		return Status::Error(EINVAL, fmt::format("session {}: the primary has {} network, "
			"this VM {} (--net TAP)", o.session,
			st->flags & KVM_FT_START_NET ? "a" : "no", m.net() ? "one" : "none"));
	return src->Next(&r);
}

// The log to replay: a file (--log) or ftlogd's secondary ring (--ftlogd).
struct ReplayInput {
	LogReader reader;
	std::unique_ptr<FileSource> file;
	RingSet rings;
	UniqueFd ctl;
	std::unique_ptr<RingSource> ring;
	RecordSource *src = nullptr;
};

Status OpenReplayInput(const Options &o, Options *opt, ReplayInput *in)
{
	if (o.log.empty() == o.ftlogd.empty())
		return Status::Error(EINVAL, "replay needs exactly one of --log and --ftlogd");
	if (!o.ftlogd.empty()) {
		if (o.session.empty())
			return Status::Error(EINVAL, "--ftlogd needs --session");
		Status s = AttachSecondary(o.ftlogd, o.session, 30000000000ULL, &in->rings, &in->ctl);
		if (!s.ok())
			return s;
		in->ring = std::make_unique<RingSource>(
			&in->rings, static_cast<uint64_t>(o.live_timeout_ms * 1e6));
		in->src = in->ring.get();
		return Status::Ok();
	}
	Status s = LogReader::Open(o.log, &in->reader);
	if (!s.ok())
		return s;
	in->reader.set_allow_torn_tail(o.go_live);
	if (in->reader.header().kind != KVM_FT_FILE_LOG)
		return Status::Error(EINVAL, o.log + ": not a record/replay log");
	opt->mem = std::to_string(in->reader.header().mem_bytes);
	opt->vcpus = in->reader.header().nr_vcpus;
	in->file = std::make_unique<FileSource>(&in->reader);
	in->src = in->file.get();
	return Status::Ok();
}

// What a live log held besides the VMM's records (kvm_ft.ko's).
void PrintLiveLog(const ReplayInput &in)
{
	if (in.ring)
		fmt::print(stderr, "ftvmm: live log: {} kvm_ft.ko records skipped ({} in the "
			   "rings of vCPUs 1..), {} lost by its rings, {} VMM records read; {} PIO "
			   "exits checked against kvm_ft.ko's, {} differ\n",
			   in.ring->kernel_records(), in.ring->kernel_other(),
			   in.ring->kernel_lost(), in.ring->vmm_records(), in.ring->pio_checked(),
			   in.ring->pio_differ());
}

} // namespace


int CmdReplay(const Options &o)
{
	Options opt = o;
	ReplayInput in;
	Status s = CheckLockOptions(o);
	if (s.ok() && !o.lock.empty() && !o.go_live)
		s = Status::Error(EINVAL, "--lock is for --go-live (the VM's lock is taken at go-live)");
	if (s.ok())
		s = OpenReplayInput(o, &opt, &in);
	if (!s.ok())
		return Fail(s);
	std::unique_ptr<Machine> m;
	uint64_t hash = 0;
	if (!(s = Setup(opt, !o.record.empty(), &m, &hash)).ok())
		return Fail(s);
	if (in.file && hash != in.reader.header().image_hash)
		return Fail(Status::Error(EINVAL, fmt::format(
			"{} was recorded with another image than {}", o.log, o.image)));
	if (in.ring && !(s = CheckLiveStart(o, *m, hash, in.ring.get())).ok())
		return Fail(s);
	std::unique_ptr<LogWriter> log;
	if (!o.record.empty()) {
		auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, m->vm().mem_bytes(), hash, 0);
		hdr.nr_vcpus = m->vm().nr_vcpus();
		if (!(s = LogWriter::Create(o.record, hdr, &log)).ok())
			return Fail(s);
	}
	std::unique_ptr<lock::Holder> holder;
	if (!o.lock.empty() && !(s = OpenLock(o, &holder)).ok())
		return Fail(s);
	ModeConfig mc = MakeModeConfig(opt);
	if (holder)
		mc.before_live = [&o, &holder] { return ClaimLock(o, holder.get()); };
	auto mode = MakeMode(m.get(), mc);
	mode->SetRecord(log.get());
	int status = 0;
	uint64_t t0 = MonotonicNs();
	if (!(s = mode->Follow(in.src, &status)).ok())
		return Fail(s);
	if (in.file && in.reader.torn())
		fmt::print(stderr, "ftvmm: {} ends inside a record at offset {}; "
			   "replayed up to it\n", o.log, in.reader.offset());
	PrintLiveLog(in);
	if (!(s = WriteStats(o.stats, *m, *mode, status, MonotonicNs() - t0, log.get())).ok())
		return Fail(s);
	return status;
}

namespace {

// Applies a snapshot and its deltas, in order, to a fresh machine whose
// mode is made with it.
Status Restore(const Options &o, std::unique_ptr<Machine> *m, std::unique_ptr<Mode> *mode)
{
	uint64_t parent = 0;
	for (size_t i = 0; i < o.restore.size(); i++) {
		const std::string &path = o.restore[i];
		LogReader r;
		Status s = LogReader::Open(path, &r);
		if (!s.ok())
			return s;
		const auto &h = r.header();
		uint32_t want = i ? KVM_FT_FILE_DELTA : KVM_FT_FILE_SNAPSHOT;
		if (h.kind != want || (i && h.parent_id != parent))
			return Status::Error(EINVAL, fmt::format("{}: expected {}", path,
				i ? "the next delta of the chain" : "a snapshot"));
		if (!i) {
			Options opt = o;
			opt.mem = std::to_string(h.mem_bytes);
			opt.vcpus = h.nr_vcpus;
			if (!(s = Setup(opt, true, m, &parent)).ok())
				return s;
			*mode = MakeMode(m->get(), MakeModeConfig(o));
		} else if (h.nr_vcpus != (*m)->vm().nr_vcpus()) {
			return Status::Error(EINVAL, fmt::format("{}: a delta of a VM with {} vCPUs",
								 path, h.nr_vcpus));
		}
		parent = h.id;
		const kvm_ft_rec_hdr *rec;
		if (!(s = r.Next(&rec)).ok())
			return s;
		if (!rec || rec->type != KVM_FT_REC_VMM_CKPT_BEGIN)
			return Status::Error(EINVAL, path + ": does not start with a checkpoint");
		FileSource src(&r);
		CkptStats cs;
		if (!(s = ApplyCheckpoint(**m, (*mode)->state(), rec, &src, &cs)).ok())
			return s.Wrap(path);
	}
	return Status::Ok();
}

} // namespace


int CmdRestore(const Options &o)
{
	std::unique_ptr<Machine> m;
	std::unique_ptr<Mode> mode;
	Status s = Restore(o, &m, &mode);
	if (!s.ok())
		return Fail(s);
	int status = 0;
	uint64_t t0 = MonotonicNs();
	if (!(s = mode->Run(&status)).ok())
		return Fail(s);
	if (!(s = WriteStats(o.stats, *m, *mode, status, MonotonicNs() - t0, nullptr)).ok())
		return Fail(s);
	return status;
}

} // namespace kvmft::vmm::cli
