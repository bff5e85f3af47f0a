// cmd_run.cc - ftvmm run: a VM, recorded to a file or to a live ring.
#include <memory>
#include <fmt/format.h>

#include "checkpoint/checkpoint.h"
#include "cli/cli.h"
#include "cli/stats_json.h"
#include "ftlog/file.h"
#include "ftlog/ftlogd_link.h"
#include "ftlog/kernel_sink.h"
#include "ftlog/ring_sink.h"
#include "lock/holder.h"
#include "machine/machine.h"
#include "output/releaser.h"

using namespace kvmft;
using namespace kvmft::vmm;

namespace kvmft::vmm::cli {

namespace {

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

// --snapshot: PREFIX.N files every --snapshot-every positions (1 vCPU)
// or epochs, written while every vCPU is stopped: a snapshot, then
// deltas.
std::function<Status()> Snapshots(const Options &o, Machine &m, Mode &mode, uint64_t image_hash)
{
	struct St {
		uint64_t n = 0, parent = 0;
	};
	auto st = std::make_shared<St>();
	return [&o, &m, &mode, image_hash, st]() -> Status {
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
		s = WriteCheckpoint(m, mode.state(), w.get(),
				    n ? KVM_FT_CKPT_DELTA : KVM_FT_CKPT_FULL, mode.position(), n, &cs);
		if (s.ok())
			s = w->Flush();
		if (!s.ok())
			return s.Wrap(path);
		st->parent = hdr.id;
		return Status::Ok();
	};
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
	auto mode = MakeMode(m.get(), MakeModeConfig(o));
	mode->SetRecord(log.get());
	if (!o.snapshot.empty())
		mode->SetStopPoints(o.snapshot_every, Snapshots(o, *m, *mode, hash));
	RingSet rings;
	UniqueFd ctl, ack_fd;
	std::unique_ptr<LogSink> sink;
	std::function<uint64_t()> ack;
	std::unique_ptr<OutputReleaser> releaser;
	if (!o.ftlogd.empty()) {
		// The live log: a memfd ring, or kvm_ft.ko's ring of the VM
		// (epochs are written by one thread into ring 0; the module's
		// probes write one ring per vCPU).
		if (!(s = OpenLiveSink(o, *m, &rings, &ctl, &ack_fd, &sink, &ack)).ok() ||
		    !(s = LogStart(sink.get(), *m, hash)).ok())
			return Fail(s);
		mode->SetRecord(sink.get());
		mode->SetAck(ack);
		if (ack_fd.valid())
			releaser = std::make_unique<OutputReleaser>(
				&m->console(), ack, std::move(ack_fd),
				m->net() ? m->net()->link() : nullptr);
	}
	int status = 0;
	uint64_t t0 = MonotonicNs();
	if (!(s = mode->Run(&status)).ok())
		return Fail(s);
	if (!(s = WriteStats(o.stats, *m, *mode, status, MonotonicNs() - t0, log.get(),
			     releaser.get())).ok())
		return Fail(s);
	return status;
}

} // namespace kvmft::vmm::cli
