// main.cc - ftvmm command line (Documentation/man/ftvmm.1.md):
//   ftvmm run [options] IMAGE
//   ftvmm replay --log FILE [options] IMAGE
//   ftvmm restore [options] SNAPSHOT [DELTA...]
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <cstdio>
#include <fmt/format.h>

#include "engine.h"
#include "lock/holder.h"
#include "ftlogd_link.h"
#include "loader.h"
#include "logfile.h"
#include "machine.h"
#include "output_release.h"
#include "kernel_sink.h"
#include "ring_sink.h"
#include "ring_source.h"
#include "smp.h"
#include "stats_json.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace {

struct Options {
	std::string mem = "64M", serial, record, log, stats, net, mac, disk, image;
	std::string snapshot, ftlogd, session, peer;
	std::string capture = "auto";	// --capture auto|kernel|user (run --ftlogd)
	std::string lock, lock_name;	// --lock AREA, --lock-name (default --session)
	uint32_t host_id = 0;
	double lock_timeout_s = 30;
	uint32_t ring_bytes = 1 << 20;
	double live_timeout_ms = 3000;
	std::vector<std::string> restore;
	uint64_t snapshot_every = 0;
	unsigned vcpus = 1;
	bool flat = false, go_live = false, disk_private = false;
	double slice_ms = 10, jitter_us = 0, epoch_ms = 20, epoch_min_ms = 2;
	bool epoch_hash = false;
	uint64_t seed = 1;
};

int ExitCodeFor(const Status &s)
{
	switch (s.err()) {
	case EPROTO: return kExitDivergence;
	case ENOLCK: return kExitLock;
	case ENODATA: return kExitLogEnd;
	case EINVAL: case ENOENT: case EEXIST: case ENOTSUP: case EBADMSG: return kExitUsage;
	default: return kExitCrash;
	}
}

int Fail(const Status &s)
{
	fmt::print(stderr, "ftvmm: {}\n", s.msg());
	return ExitCodeFor(s);
}

Status CheckLockOptions(const Options &o)
{
	if (o.lock.empty()) {
		if (o.host_id || !o.lock_name.empty())
			return Status::Error(EINVAL, "--host-id and --lock-name need --lock AREA");
		return Status::Ok();
	}
	if (!o.host_id)
		return Status::Error(EINVAL, "--lock needs --host-id N (this host's id on the area)");
	if (o.lock_name.empty() && o.session.empty())
		return Status::Error(EINVAL, "--lock needs --lock-name NAME (or --session)");
	return Status::Ok();
}

// Take this host's id on the lock area (the claim comes later).
Status OpenLock(const Options &o, std::unique_ptr<lock::Holder> *h)
{
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	Status s = lock::Holder::Open(o.lock, o.host_id,
				      fmt::format("ftvmm {}:{}", host, getpid()),
				      static_cast<int64_t>(o.lock_timeout_s * 1e9), h);
	if (s.ok())
		return s;
	if (s.err() == EBUSY) // our host id is live elsewhere
		return Status::Error(ENOLCK, s.msg());
	if (s.err() == EBADMSG) // not an area: a bad --lock argument
		return Status::Error(EINVAL, s.msg());
	return s.Wrap("lock area " + o.lock);
}

// Own the VM's lock, or stop: the loser of a failover race never runs the
// VM (SPEC 1.7). Once owned, losing the lease ends the process, and the VM
// with it, at once.
Status ClaimLock(const Options &o, lock::Holder *h)
{
	const std::string name = o.lock_name.empty() ? o.session : o.lock_name;
	Status s = h->Acquire(name, static_cast<int64_t>(o.lock_timeout_s * 1e9),
			      [name](const std::string &why) {
				      fmt::print(stderr, "ftvmm: lost the lock on {}: {}; "
						 "stopping the VM\n", name, why);
				      _exit(kExitLock);
			      });
	if (!s.ok())
		return Status::Error(ENOLCK, fmt::format("the VM's lock {} is not ours: {}",
							 name, s.msg()));
	fmt::print(stderr, "ftvmm: owns the lock on {}\n", name);
	return s;
}

bool ParseMac(const std::string &str, VirtioNet::Mac *mac)
{
	unsigned b[6];
	char end;
	if (sscanf(str.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
		   &b[5], &end) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		(*mac)[i] = static_cast<uint8_t>(b[i]);
	return !((*mac)[0] & 1);	// a unicast address
}

Status ParseSize(const std::string &str, uint64_t *out)
{
	char *end = nullptr;
	errno = 0;
	unsigned long long v = strtoull(str.c_str(), &end, 0);
	if (errno || end == str.c_str())
		return Status::Error(EINVAL, "bad size '" + str + "'");
	uint64_t mul = 1;
	std::string suf(end);
	if (suf == "K" || suf == "k") mul = 1ULL << 10;
	else if (suf == "M" || suf == "m") mul = 1ULL << 20;
	else if (suf == "G" || suf == "g") mul = 1ULL << 30;
	else if (!suf.empty())
		return Status::Error(EINVAL, "bad size suffix in '" + str + "' (K, M or G)");
	if (v > UINT64_MAX / mul)
		return Status::Error(EINVAL, "size '" + str + "' too large");
	*out = v * mul;
	return Status::Ok();
}

Status OpenSerial(const std::string &path, int *fd)
{
	*fd = 1;
	if (path.empty())
		return Status::Ok();
	*fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd < 0)
		return Status::Errno("open serial file " + path);
	return Status::Ok();
}

Status Setup(const Options &o, bool dirty_log, std::unique_ptr<Machine> *m,
	     uint64_t *image_hash)
{
	if (o.vcpus < 1 || o.vcpus > kMaxVcpus)
		return Status::Error(EINVAL, fmt::format("--vcpus {}: 1 to {} are supported",
							 o.vcpus, kMaxVcpus));
	MachineConfig cfg;
	cfg.disk = o.disk;
	cfg.net = o.net;
	if (!o.mac.empty() && !ParseMac(o.mac, &cfg.mac))
		return Status::Error(EINVAL, fmt::format("--mac '{}': six hex bytes, e.g. "
							 "52:54:00:12:34:56", o.mac));
	cfg.vcpus = o.vcpus;
	Status s = ParseSize(o.mem, &cfg.mem_bytes);
	if (s.ok())
		s = OpenSerial(o.serial, &cfg.console_fd);
	if (!s.ok())
		return s;
	cfg.dirty_log = dirty_log;
	if (!(s = Machine::Create(std::move(cfg), m)).ok())
		return s;
	if (o.image.empty())
		return Status::Ok();
	return BootImage((*m)->vm(), o.image, o.flat, image_hash);
}

EngineConfig MakeEngineConfig(const Options &o)
{
	EngineConfig c;
	c.slice_ns = static_cast<uint64_t>(o.slice_ms * 1e6);
	c.jitter_ns = static_cast<uint64_t>(o.jitter_us * 1e3);
	c.seed = o.seed;
	c.go_live = o.go_live;
	c.private_disk = o.disk_private;
	return c;
}

// Runs e to the end, writing PREFIX.N snapshots every N positions.
Status RunWithSnapshots(const Options &o, Machine &m, Engine &e, uint64_t image_hash,
			int *status)
{
	uint64_t parent = 0;
	for (uint64_t n = 0;; n++) {
		uint64_t at = o.snapshot.empty() ? UINT64_MAX : e.pos() + o.snapshot_every;
		Status s = e.Run(status, at);
		if (!s.ok() || *status >= 0)
			return s;
		uint32_t kind = n ? KVM_FT_FILE_DELTA : KVM_FT_FILE_SNAPSHOT;
		auto hdr = MakeFileHeader(kind, m.vm().mem_bytes(), image_hash, parent);
		std::unique_ptr<LogWriter> w;
		std::string path = fmt::format("{}.{}", o.snapshot, n);
		if (!(s = LogWriter::Create(path, hdr, &w)).ok())
			return s;
		CkptStats cs;
		s = WriteCheckpoint(m, e.state(), w.get(),
				    n ? KVM_FT_CKPT_DELTA : KVM_FT_CKPT_FULL, e.pos(), n, &cs);
		if (s.ok())
			s = w->Flush();
		if (!s.ok())
			return s.Wrap(path);
		parent = hdr.id;
	}
}

uint64_t DiskBytes(Machine &m)
{
	return m.blk() ? m.blk()->disk()->sectors() * 512 : 0;
}

// The live log's destination for run --ftlogd: kvm_ft.ko's ring of this
// VM (--capture kernel, or auto with the module loaded; the probes'
// records go to the same ring) or a memfd ring (--capture user). Both
// registered with ftlogd; *ack reads the ack_pos ftlogd publishes.
Status OpenLiveSink(const Options &o, Machine &m, RingSet *rings, UniqueFd *ctl,
		    UniqueFd *ack_fd, std::unique_ptr<LogSink> *sink,
		    std::function<uint64_t()> *ack)
{
	bool kernel = o.capture == "kernel" || (o.capture == "auto" && KernelCaptureAvailable());
	if (o.capture == "kernel" && !KernelCaptureAvailable())
		return Status::Error(ENOENT, "--capture kernel: no " KVM_FT_DEVICE
					     " (load kvm_ft.ko, or use --capture user)");
	if (!kernel) {
		Status s = RegisterPrimary(o.ftlogd, o.session, o.peer, o.ring_bytes, rings, ctl,
					   ack_fd);
		if (!s.ok())
			return s;
		auto r = std::make_unique<RingSink>(rings->ring(0), rings->event_fd());
		*ack = [p = r.get()] { return p->Ack(); };
		*sink = std::move(r);
		return Status::Ok();
	}
	UniqueFd session;
	std::unique_ptr<KernelRingSink> k;
	Status s = AttachKernelCapture(m.vm().vm_fd(), m.vm().nr_vcpus(), o.ring_bytes, &session);
	if (s.ok())
		s = KernelRingSink::Create(std::move(session), 10000000000ULL, &k);
	if (s.ok())
		s = RegisterPrimaryKernel(o.ftlogd, o.session, o.peer, k->session_fd(), ctl,
					  ack_fd);
	if (!s.ok())
		return s.Wrap("kernel capture");
	*ack = [p = k.get()] { return p->Ack(); };
	*sink = std::move(k);
	return Status::Ok();
}

// A live log starts with VMM_START: what the secondary checks its own VM
// against (CheckLiveStart).
Status LogStart(LogSink *sink, Machine &m, uint64_t hash)
{
	kvm_ft_vmm_start st{};
	InitRec(&st.hdr, KVM_FT_REC_VMM_START, sizeof(st), 0);
	st.mem_bytes = m.vm().mem_bytes();
	st.image_hash = hash;
	st.disk_bytes = DiskBytes(m);
	st.nr_vcpus = m.vm().nr_vcpus();
	st.flags = m.net() ? KVM_FT_START_NET : 0;
	return sink->Append(&st, sizeof(st));
}

SmpConfig MakeSmpConfig(const Options &o)
{
	SmpConfig c;
	c.epoch_ns = static_cast<uint64_t>(o.epoch_ms * 1e6);
	c.min_epoch_ns = static_cast<uint64_t>(o.epoch_min_ms * 1e6);
	c.slice_ns = static_cast<uint64_t>(o.slice_ms * 1e6);
	c.hash_epochs = o.epoch_hash;
	return c;
}

// SMP --snapshot: PREFIX.N files every --snapshot-every epochs, written
// while all vCPUs are stopped.
std::function<Status()> SmpSnapshots(const Options &o, Machine &m, uint64_t image_hash)
{
	struct St {
		uint64_t epochs = 0, n = 0, parent = 0;
	};
	auto st = std::make_shared<St>();
	return [&o, &m, image_hash, st]() -> Status {
		if (++st->epochs % o.snapshot_every)
			return Status::Ok();
		uint64_t n = st->n++;
		uint32_t kind = n ? KVM_FT_FILE_DELTA : KVM_FT_FILE_SNAPSHOT;
		auto hdr = MakeFileHeader(kind, m.vm().mem_bytes(), image_hash, st->parent);
		hdr.nr_vcpus = m.vm().nr_vcpus();
		std::unique_ptr<LogWriter> w;
		std::string path = fmt::format("{}.{}", o.snapshot, n);
		Status s = LogWriter::Create(path, hdr, &w);
		if (!s.ok())
			return s;
		CkptStats cs;
		s = WriteCheckpoint(m, m.devices(), w.get(),
				    n ? KVM_FT_CKPT_DELTA : KVM_FT_CKPT_FULL, 0, n, &cs);
		if (s.ok())
			s = w->Flush();
		if (!s.ok())
			return s.Wrap(path);
		st->parent = hdr.id;
		return Status::Ok();
	};
}

// --vcpus N > 1: checkpoint replication by epochs (smp.h).
int CmdRunSmp(const Options &o, std::unique_ptr<Machine> m, uint64_t hash,
	      std::unique_ptr<LogWriter> log)
{
	SmpVm smp(m.get(), MakeSmpConfig(o));
	smp.SetRecord(log.get());
	if (!o.snapshot.empty())
		smp.SetAtEpoch(SmpSnapshots(o, *m, hash));
	RingSet rings;
	UniqueFd ctl, ack_fd;
	std::unique_ptr<LogSink> sink;
	std::function<uint64_t()> ack;
	std::unique_ptr<OutputReleaser> releaser;
	Status s;
	if (!o.ftlogd.empty()) {
		// Epochs are written by one thread into ring 0: a memfd ring,
		// or kvm_ft.ko's (one ring per vCPU for its probe records).
		if (!(s = OpenLiveSink(o, *m, &rings, &ctl, &ack_fd, &sink, &ack)).ok() ||
		    !(s = LogStart(sink.get(), *m, hash)).ok())
			return Fail(s);
		smp.SetRecord(sink.get());
		smp.SetAck(ack);
		if (ack_fd.valid())
			releaser = std::make_unique<OutputReleaser>(
				&m->console(), ack, std::move(ack_fd),
				m->net() ? m->net()->link() : nullptr);
	}
	int status = 0;
	uint64_t t0 = MonotonicNowNs();
	if (!(s = smp.Run(&status)).ok())
		return Fail(s);
	if (!(s = WriteSmpStats(o.stats, *m, smp, status, MonotonicNowNs() - t0, log.get())).ok())
		return Fail(s);
	return status;
}

int CmdRun(const Options &o)
{
	std::unique_ptr<Machine> m;
	uint64_t hash = 0;
	bool record = !o.record.empty();
	bool ft = !o.ftlogd.empty();
	if ((record || ft) && !o.snapshot.empty())
		return Fail(Status::Error(EINVAL, "recording and --snapshot share the dirty log: pick one"));
	if (record && ft)
		return Fail(Status::Error(EINVAL, "--record and --ftlogd: pick one log destination"));
	if (ft && (o.session.empty() || o.peer.empty()))
		return Fail(Status::Error(EINVAL, "--ftlogd needs --session and --peer"));
	Status s = CheckLockOptions(o);
	if (s.ok())
		s = Setup(o, !o.snapshot.empty(), &m, &hash); // recording: on when needed
	if (!s.ok())
		return Fail(s);
	if (!o.snapshot.empty() && !o.snapshot_every)
		return Fail(Status::Error(EINVAL, "--snapshot needs --snapshot-every N"));
	std::unique_ptr<lock::Holder> holder;
	if (!o.lock.empty()) {
		if (!(s = OpenLock(o, &holder)).ok() || !(s = ClaimLock(o, holder.get())).ok())
			return Fail(s);
	}
	std::unique_ptr<LogWriter> log;
	if (record) {
		auto hdr = MakeFileHeader(KVM_FT_FILE_LOG, m->vm().mem_bytes(), hash, 0);
		hdr.nr_vcpus = m->vm().nr_vcpus();
		if (!(s = LogWriter::Create(o.record, hdr, &log)).ok())
			return Fail(s);
	}
	if (o.vcpus > 1)
		return CmdRunSmp(o, std::move(m), hash, std::move(log));
	Engine e(m.get(), MakeEngineConfig(o));
	e.SetRecord(log.get());
	RingSet rings;
	UniqueFd ctl, ack_fd;
	std::unique_ptr<LogSink> sink;
	std::function<uint64_t()> ack;
	std::unique_ptr<OutputReleaser> releaser;
	if (!o.ftlogd.empty()) {
		if (!(s = OpenLiveSink(o, *m, &rings, &ctl, &ack_fd, &sink, &ack)).ok() ||
		    !(s = LogStart(sink.get(), *m, hash)).ok())
			return Fail(s);
		e.SetRecord(sink.get());
		e.SetAck(ack);
		if (ack_fd.valid())
			releaser = std::make_unique<OutputReleaser>(
				&m->console(), ack, std::move(ack_fd),
				m->net() ? m->net()->link() : nullptr);
	}
	int status = 0;
	uint64_t t0 = MonotonicNowNs();
	s = RunWithSnapshots(o, *m, e, hash, &status);
	if (!s.ok())
		return Fail(s);
	if (!(s = WriteStats(o.stats, *m, e, status, MonotonicNowNs() - t0, log.get(),
			     releaser.get())).ok())
		return Fail(s);
	return status;
}

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

// Replay of an SMP log: apply its complete epochs; at its end go live
// (all vCPUs from the last complete epoch) or stop.
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

int CmdReplaySmp(const Options &o, ReplayInput &in, Machine &m, lock::Holder *holder,
		 LogWriter *log)
{
	SmpVm smp(&m, MakeSmpConfig(o));
	int status = -1;
	uint64_t t0 = MonotonicNowNs();
	if (m.blk()) // each epoch's pending writes: written at go-live, or
		     // to a private copy as the epochs are applied
		m.blk()->disk()->set_mode(o.disk_private ? Disk::kEpochsPrivate : Disk::kEpochs);
	if (m.net()) // each epoch's held frames, sent at go-live
		m.net()->link()->set_mode(NetLink::kEpochs);
	Status s = smp.ApplyLog(in.src, &status);
	const SmpStats &st = smp.stats();
	if (!s.ok()) {
		fmt::print(stderr, "ftvmm: {} epochs applied\n", st.applied);
		return Fail(s);
	}
	fmt::print(stderr, "ftvmm: {} epochs applied{}\n", st.applied,
		   st.torn_epoch ? "; an incomplete epoch at the end of the log discarded" : "");
	PrintLiveLog(in);
	if (!st.ended) {
		if (!o.go_live)
			return Fail(Status::Error(ENODATA, fmt::format(
				"the log ends after epoch {} without END", st.applied)));
		if (!st.applied)
			return Fail(Status::Error(ENODATA, "the log holds no complete epoch: "
						  "nothing to go live from"));
		if (holder && !(s = ClaimLock(o, holder)).ok())
			return Fail(s);
		fmt::print(stderr, "ftvmm: going live from epoch {}\n", st.applied - 1);
		smp.SetRecord(log);
		if (!(s = smp.Run(&status)).ok())
			return Fail(s);
	}
	if (!(s = WriteSmpStats(o.stats, m, smp, status, MonotonicNowNs() - t0, log)).ok())
		return Fail(s);
	return status;
}

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
	if (opt.vcpus > 1)
		return CmdReplaySmp(o, in, *m, holder.get(), log.get());
	EngineConfig ec = MakeEngineConfig(opt);
	if (holder)
		ec.before_live = [&o, &holder] { return ClaimLock(o, holder.get()); };
	Engine e(m.get(), ec);
	e.SetReplay(in.src);
	e.SetRecord(log.get());
	int status = 0;
	uint64_t t0 = MonotonicNowNs();
	if (!(s = e.Run(&status)).ok())
		return Fail(s);
	if (in.file && in.reader.torn())
		fmt::print(stderr, "ftvmm: {} ends inside a record at offset {}; "
			   "replayed up to it\n", o.log, in.reader.offset());
	if (!e.replaying())
		fmt::print(stderr, "ftvmm: log ended at position {}; went live\n",
			   e.stats().went_live_at);
	PrintLiveLog(in);
	if (!(s = WriteStats(o.stats, *m, e, status, MonotonicNowNs() - t0, log.get())).ok())
		return Fail(s);
	return status;
}

// Applies a snapshot and its deltas, in order, to a fresh machine.
Status Restore(const Options &o, std::unique_ptr<Machine> *m, std::unique_ptr<Engine> *e)
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
			if (h.nr_vcpus == 1)
				*e = std::make_unique<Engine>(m->get(), MakeEngineConfig(o));
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
		if (!(s = ApplyCheckpoint(**m, *e ? (*e)->state() : (*m)->devices(), rec, &src,
					  &cs)).ok())
			return s.Wrap(path);
	}
	return Status::Ok();
}

int CmdRestore(const Options &o)
{
	std::unique_ptr<Machine> m;
	std::unique_ptr<Engine> e;
	Status s = Restore(o, &m, &e);
	if (!s.ok())
		return Fail(s);
	int status = 0;
	uint64_t t0 = MonotonicNowNs();
	if (!e) { // more than one vCPU
		SmpVm smp(m.get(), MakeSmpConfig(o));
		if (!(s = smp.Run(&status)).ok())
			return Fail(s);
		if (!(s = WriteSmpStats(o.stats, *m, smp, status, MonotonicNowNs() - t0, nullptr)).ok())
			return Fail(s);
		return status;
	}
	if (!(s = e->Run(&status)).ok())
		return Fail(s);
	if (!(s = WriteStats(o.stats, *m, *e, status, MonotonicNowNs() - t0, nullptr)).ok())
		return Fail(s);
	return status;
}

void LockOptions(CLI::App *c, Options &o)
{
	c->add_option("--lock", o.lock, "Lock area (ftctl lock init) arbitrating the VM");
	c->add_option("--host-id", o.host_id, "This host's id on the lock area");
	c->add_option("--lock-name", o.lock_name, "The VM's name on the area (default --session)");
	c->add_option("--lock-timeout", o.lock_timeout_s,
		      "Give up on the lock after S seconds (default 30)");
}

void CommonOptions(CLI::App *c, Options &o)
{
	c->add_option("--serial", o.serial, "Guest console to FILE (default stdout)");
	c->add_option("--stats", o.stats, "Write run statistics as JSON to FILE");
	c->add_option("--slice", o.slice_ms, "Time slice before a kick, ms (default 10)");
}

} // namespace

int main(int argc, char **argv)
{
	CLI::App app{"ftvmm - KVM VMM with record, replay and checkpoints"};
	app.require_subcommand(1);
	Options o;
	auto *run = app.add_subcommand("run", "Run a guest (optionally recording)");
	CommonOptions(run, o);
	run->add_option("--mem", o.mem, "Guest RAM (e.g. 64M, 1G; max 3G)");
	run->add_option("--vcpus", o.vcpus, "vCPUs, 1 to 8 (default 1; more than 1: "
			"checkpoint replication by epochs)");
	run->add_option("--epoch", o.epoch_ms, "SMP: epoch length, ms (default 20)");
	run->add_option("--epoch-min", o.epoch_min_ms,
			"SMP with an ACK: an epoch in which the guest sent a frame ends "
			"this long after its start, ms (default 2; 0 = never early)");
	run->add_flag("--epoch-hash", o.epoch_hash, "SMP: put the RAM hash into each epoch");
	run->add_option("--record", o.record, "Record the FT log to FILE");
	run->add_option("--ftlogd", o.ftlogd, "Record to a ring registered with ftlogd at SOCKET");
	run->add_option("--session", o.session, "ftlogd session name");
	run->add_option("--capture", o.capture,
			"With --ftlogd: log through kvm_ft.ko's ring (kernel), a "
			"shared-memory ring (user), or kernel if " KVM_FT_DEVICE " exists (auto)")
		->check(CLI::IsMember({"auto", "kernel", "user"}));
	run->add_option("--peer", o.peer, "ftlogd peer host of the secondary");
	run->add_option("--ring-bytes", o.ring_bytes, "Log ring size (power of two)");
	run->add_option("--net", o.net, "virtio-net on tap interface TAP");
	run->add_option("--mac", o.mac, "virtio-net MAC (default 52:54:00:12:34:56)");
	run->add_option("--disk", o.disk, "virtio-blk on FILE (size a multiple of 512)");
	run->add_flag("--flat", o.flat, "IMAGE is a raw binary loaded at 0x100000");
	run->add_option("--jitter", o.jitter_us, "Delay each timer edge by up to US (tests)");
	run->add_option("--seed", o.seed, "Seed of --jitter");
	run->add_option("--snapshot", o.snapshot, "Write PREFIX.0 (full), PREFIX.1.. (deltas)");
	run->add_option("--snapshot-every", o.snapshot_every, "Positions between snapshots");
	LockOptions(run, o);
	run->add_option("IMAGE", o.image, "Guest image")->required();
	auto *rep = app.add_subcommand("replay", "Replay a recorded log");
	CommonOptions(rep, o);
	rep->add_option("--log", o.log, "Log FILE to replay");
	rep->add_option("--ftlogd", o.ftlogd, "Replay live from ftlogd at SOCKET");
	rep->add_option("--session", o.session, "ftlogd session name");
	rep->add_option("--live-timeout", o.live_timeout_ms,
			"Live log silent this long (ms) = ended (default 3000)");
	rep->add_option("--mem", o.mem, "Guest RAM (with --ftlogd; as on the primary)");
	rep->add_option("--vcpus", o.vcpus, "vCPUs (with --ftlogd; as on the primary)");
	rep->add_option("--epoch", o.epoch_ms, "SMP: epoch length after going live, ms");
	rep->add_option("--epoch-min", o.epoch_min_ms,
			"SMP: the --epoch-min of run, after going live");
	rep->add_flag("--epoch-hash", o.epoch_hash, "SMP: after going live, hash RAM per epoch");
	rep->add_flag("--go-live", o.go_live, "At the end of the log, continue as primary");
	rep->add_option("--record", o.record, "After going live, record to FILE");
	rep->add_option("--disk", o.disk, "The primary's virtio-blk disk (written at go-live only)");
	rep->add_flag("--disk-private", o.disk_private,
		      "--disk is this host's own copy: write it as the log replays")
		->needs(rep->get_option("--disk"));
	rep->add_option("--net", o.net, "virtio-net on TAP (used at go-live only)");
	rep->add_option("--mac", o.mac, "virtio-net MAC (the primary's)");
	LockOptions(rep, o);
	rep->add_option("IMAGE", o.image, "Guest image the log was recorded with")->required();
	auto *res = app.add_subcommand("restore", "Restore a snapshot (+ deltas) and run");
	CommonOptions(res, o);
	res->add_option("--disk", o.disk, "virtio-blk on FILE (the snapshotted VM's disk)");
	res->add_option("--net", o.net, "virtio-net on TAP (a snapshotted VM with a network)");
	res->add_option("--mac", o.mac, "virtio-net MAC (the snapshotted VM's)");
	res->add_option("FILES", o.restore, "SNAPSHOT [DELTA...]")->required();
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		int r = app.exit(e);
		return r ? kExitUsage : 0;
	}
	if (*run)
		return CmdRun(o);
	if (*rep)
		return CmdReplay(o);
	return CmdRestore(o);
}
