// cmd_run.cc - ftvmm run: a VM, recorded to a file or to a live ring.
#include <fcntl.h>
#include <unistd.h>

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

#include "cli.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace kvmft::vmm::cli {

namespace {

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

} // namespace

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

} // namespace kvmft::vmm::cli
