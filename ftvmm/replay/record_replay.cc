// record_replay.cc - vCPU loop, record and replay (record_replay.h).
#include "replay/record_replay.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hw/exits.h"
#include "vm/kick.h"

namespace kvmft::vmm {

namespace {
const char *ExitName(uint32_t r)
{
	switch (r) {
	case KVM_EXIT_IO: return "port I/O";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_IRQ_WINDOW_OPEN: return "interrupt window";
	default: return "other";
	}
}
} // namespace

RecordReplay::RecordReplay(Machine *m, const ModeConfig &cfg)
	: m_(m), cfg_(cfg), out_(m), rng_(cfg.seed)
{
	kick::Install();
	m_->vm().run()->kvm_valid_regs = KVM_SYNC_X86_REGS;
	NewJitter();
	if (m_->blk())
		m_->blk()->set_reader([this](uint64_t sector, uint8_t *dst, uint32_t bytes) {
			return BlkRead(sector, dst, bytes);
		});
}

RecordReplay::~RecordReplay()
{
	if (timer_)
		timer_delete(static_cast<timer_t>(timer_));
	kick::Unbind(m_->vm().run());
}

void RecordReplay::SetAck(std::function<uint64_t()> ack)
{
	out_.SetAck(std::move(ack), sink_);
	SetOutputModes();
}

void RecordReplay::SetStopPoints(uint64_t every, std::function<Status()> fn)
{
	stop_every_ = every;
	at_stop_ = std::move(fn);
}

void RecordReplay::SetOutputModes()
{
	if (m_->blk())
		m_->blk()->disk()->set_mode(src_ ? (cfg_.private_disk ? Disk::kReplayPrivate
								      : Disk::kReplay)
					    : out_.held_by_ack() ? Disk::kHold : Disk::kDirect);
	if (m_->net())
		m_->net()->link()->set_mode(src_ ? NetLink::kReplay
					    : out_.held_by_ack() ? NetLink::kHold : NetLink::kDirect);
}

Status RecordReplay::BlkError()
{
	return m_->blk() ? m_->blk()->TakeError() : Status::Ok();
}

// The data of a virtio-blk read at position pos_: input to be logged, or
// taken from the log (the replayer never reads the disk).
Status RecordReplay::BlkRead(uint64_t sector, uint8_t *dst, uint32_t bytes)
{
	if (src_) {
		const kvm_ft_rec_hdr *r;
		Status s = src_->Next(&r);
		if (!s.ok())
			return s.Wrap("replay");
		if (r) {
			const auto *b = reinterpret_cast<const kvm_ft_vmm_blk_read *>(r);
			if (r->type != KVM_FT_REC_VMM_BLK_READ || r->pos != pos_ ||
			    r->len < sizeof(*b) || b->bytes > r->len - sizeof(*b))
				return Diverged(fmt::format("the guest read {} bytes of disk sector {}; "
					"the log has record type {:#x} at position {}", bytes,
					sector, r->type, r->pos));
			if (b->sector != sector || b->bytes != bytes || b->reserved)
				return Diverged(fmt::format("the guest read {} bytes of disk sector {}; "
					"the log has {} bytes of sector {}", bytes, sector,
					b->bytes, b->sector));
			memcpy(dst, reinterpret_cast<const uint8_t *>(b) + sizeof(*b), bytes);
			return Status::Ok();
		}
		bool live = false;
		s = LogEnded("inside a disk read", &live, true);
		if (!s.ok() || !live)
			return s;
	}
	Status s = m_->blk()->disk()->Read(sector, dst, bytes);
	if (!s.ok() || !sink_)
		return s;
	std::vector<uint8_t> rec;
	auto *b = NewPayloadRec<kvm_ft_vmm_blk_read>(&rec, KVM_FT_REC_VMM_BLK_READ, pos_, dst, bytes);
	b->sector = sector;
	b->bytes = bytes;
	return Append(rec.data(), rec.size());
}

std::vector<Stateful *> RecordReplay::state()
{
	auto v = m_->devices();
	v.push_back(this);
	return v;
}

void RecordReplay::NewJitter()
{
	jitter_cur_ = cfg_.jitter_ns ? rng_() % (cfg_.jitter_ns + 1) : 0;
}

Status RecordReplay::Append(void *rec, uint32_t len)
{
	// After going live inside an exit, its records are the old log's.
	return sink_ && !defer_start_ ? sink_->Append(rec, len) : Status::Ok();
}

Status RecordReplay::Diverged(const std::string &what) const
{
	return Status::Error(EPROTO, fmt::format("divergence at position {}: {}", pos_, what));
}

void RecordReplay::ArmKick()
{
	if (!timer_) {
		sigevent sev{};
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = kick::Signal();
		sev._sigev_un._tid = gettid();
		timer_t t;
		if (timer_create(CLOCK_MONOTONIC, &sev, &t) < 0)
			return; // no kicks: interrupts wait for the next exit
		timer_ = t;
	}
	uint64_t next = m_->pit().NextIrq();
	uint64_t due = m_->pic().Pending() ? m_->Now()
		       : next == UINT64_MAX ? UINT64_MAX : next + jitter_cur_;
	uint64_t at = due == UINT64_MAX ? 0 : due + cfg_.slice_ns;
	if (at == armed_at_)
		return;
	itimerspec its{};
	its.it_value.tv_sec = at / 1000000000;
	its.it_value.tv_nsec = at % 1000000000;
	timer_settime(static_cast<timer_t>(timer_), TIMER_ABSTIME, &its, nullptr);
	armed_at_ = at;
}

Status RecordReplay::Enter()
{
	kvm_run *run = m_->vm().run();
	if (!src_)
		ArmKick();
	run->request_interrupt_window = window_;
	int r = ioctl(m_->vm().vcpu_fd(), KVM_RUN, 0);
	queued_ = false;
	ckpt_here_ = false;
	if (r == 0)
		return Status::Ok();
	if (errno != EINTR && errno != EAGAIN)
		return Status::Errno(fmt::format("KVM_RUN at position {}", pos_));
	run->immediate_exit = 0;
	run->exit_reason = KVM_EXIT_INTR;
	return Status::Ok();
}

Status RecordReplay::Run(int *status)
{
	for (;;) {
		const uint64_t at = at_stop_ && stop_every_ ? pos_ + stop_every_ : UINT64_MAX;
		Status s = RunUntil(status, at);
		if (!s.ok() || *status >= 0)
			return s;
		if (!(s = at_stop_()).ok())
			return s;
	}
}

Status RecordReplay::Follow(RecordSource *src, int *status)
{
	SetReplay(src);
	Status s = Run(status);
	if (s.ok() && !replaying() && cfg_.say)
		cfg_.say(fmt::format("log ended at position {}; went live", st_.went_live_at));
	return s;
}

void RecordReplay::AddStats(nlohmann::json *j) const
{
	j->update({
		{"positions", st_.positions},
		{"host_exits", st_.host_exits},
		{"irqs", st_.irqs},
		{"windows", st_.windows},
		{"checkpoints", st_.ckpt.count},
		{"checkpoint_pages", st_.ckpt.pages},
		{"checkpoint_ns", st_.ckpt.ns},
		{"went_live_at", st_.went_live_at},
		{"disk_read_bytes", m_->blk() ? m_->blk()->read_bytes() : 0},
		{"disk_write_bytes", m_->blk() ? m_->blk()->written_bytes() : 0},
	});
}

Status RecordReplay::RunUntil(int *status, uint64_t pause_at)
{
	kick::Bind(m_->vm().run());
	if (ended_) {
		*status = status_;
		return Status::Ok();
	}
	for (;;) {
		if (at_det_ && pos_ >= pause_at) {
			*status = -1;
			return sink_ ? sink_->Flush() : Status::Ok();
		}
		bool ended = false;
		Status s = BeforeEntry(&ended);
		if (s.ok() && !ended)
			s = Enter();
		if (s.ok() && !ended)
			s = HandleExit(&ended);
		if (!s.ok()) {
			if (sink_)
				sink_->Flush();
			m_->console().Flush();
			return s;
		}
		if (ended)
			break;
	}
	if (timer_) {
		itimerspec off{};
		timer_settime(static_cast<timer_t>(timer_), 0, &off, nullptr);
		armed_at_ = 0;
	}
	*status = status_;
	Status s = sink_ ? sink_->Flush() : Status::Ok();
	if (s.ok()) // the last outputs go out once the ACK covers them
		s = out_.Drain(cfg_.hold_timeout_ns);
	m_->console().Flush();
	return s;
}

Status RecordReplay::HandleExit(bool *ended)
{
	kvm_run *run = m_->vm().run();
	uint32_t reason = run->exit_reason;
	Status s;
	switch (reason) {
	case KVM_EXIT_IO:
	case KVM_EXIT_MMIO:
	case KVM_EXIT_HLT:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		pos_++;
		at_det_ = true;
		st_.positions++;
		if (!(s = CheckExit(reason)).ok())
			return s;
		if (m_->net()) // frames sent in this exit: its position and tag
			m_->net()->link()->set_tag(sink_ && !src_ ? sink_->tag() : 0, pos_);
		if (m_->blk()) // and disk writes
			m_->blk()->disk()->set_pos(pos_);
		if (reason == KVM_EXIT_HLT)
			halted_ = true;
		else if (reason == KVM_EXIT_IRQ_WINDOW_OPEN)
			window_ = false;
		else if (!(s = src_ ? ReplayIo() : LogIo()).ok())
			return s;
		break;
	case KVM_EXIT_INTR:
		at_det_ = false;
		st_.host_exits++;
		return Status::Ok();
	case KVM_EXIT_SHUTDOWN:
		return Status::Error(EFAULT, fmt::format(
			"guest shut down (triple fault) after position {}, rip {:#x}", pos_, Rip()));
	case KVM_EXIT_FAIL_ENTRY:
		return Status::Error(EFAULT, fmt::format("VM entry failed, reason {:#x}",
			run->fail_entry.hardware_entry_failure_reason));
	case KVM_EXIT_INTERNAL_ERROR:
		return Status::Error(EFAULT, fmt::format(
			"KVM internal error {} after position {}, rip {:#x}",
			run->internal.suberror, pos_, Rip()));
	default:
		return Status::Error(EFAULT, fmt::format(
			"unexpected KVM exit reason {} after position {}", reason, pos_));
	}
	if (m_->exit_port().done())
		return Finish(ended);
	return Status::Ok();
}

Status RecordReplay::CheckExit(uint32_t reason)
{
	if (src_) {
		const kvm_ft_rec_hdr *r;
		Status s = src_->Next(&r);
		if (!s.ok())
			return s.Wrap("replay");
		if (!r) {
			bool live = false;
			s = LogEnded("before an exit", &live, true);
			if (!s.ok() || !live)
				return s;
			return CheckExit(reason); // now as the primary
		}
		const auto *e = reinterpret_cast<const kvm_ft_vmm_exit *>(r);
		if (r->type != KVM_FT_REC_VMM_EXIT || r->len != sizeof(*e) || r->pos != pos_)
			return Diverged(fmt::format("log has record type {:#x} at position {}, "
				"guest made a {} exit", r->type, r->pos, ExitName(reason)));
		if (e->reserved)
			return Status::Error(EINVAL, fmt::format(
				"replay: malformed EXIT record at position {}", r->pos));
		if (e->reason != reason || e->rip != Rip())
			return Diverged(fmt::format("log has a {} exit at rip {:#x}, guest made a {} "
				"exit at rip {:#x}", ExitName(e->reason), e->rip,
				ExitName(reason), Rip()));
		return Status::Ok();
	}
	if (!sink_)
		return Status::Ok();
	kvm_ft_vmm_exit e;
	InitRec(&e.hdr, KVM_FT_REC_VMM_EXIT, sizeof(e), pos_);
	e.reason = reason;
	e.reserved = 0;
	e.rip = Rip();
	Status s = Append(&e, sizeof(e));
	m_->console().set_tag(sink_->tag());
	if (m_->blk())
		m_->blk()->disk()->set_tag(sink_->tag());
	return s;
}

Status RecordReplay::LogIo()
{
	kvm_run *run = m_->vm().run();
	if (run->exit_reason == KVM_EXIT_MMIO) {
		// A write is logged before the device acts on it: a virtio-blk
		// QueueNotify appends its disk reads after it.
		bool wr = run->mmio.is_write;
		if (!wr)
			DoMmio(run, &m_->mmio());
		if (!sink_) {
			if (wr)
				DoMmio(run, &m_->mmio());
			return BlkError();
		}
		kvm_ft_rec_mmio r;
		InitRec(&r.hdr, KVM_FT_REC_MMIO, sizeof(r), pos_);
		r.gpa = run->mmio.phys_addr;
		r.len = run->mmio.len;
		r.dir = run->mmio.is_write ? KVM_FT_DIR_OUT : KVM_FT_DIR_IN;
		memset(r.reserved, 0, sizeof(r.reserved));
		r.value = 0;
		memcpy(&r.value, run->mmio.data, std::min<uint32_t>(r.len, 8));
		Status s = Append(&r, sizeof(r));
		if (!s.ok() || !wr)
			return s;
		DoMmio(run, &m_->mmio());
		return BlkError();
	}
	DoPortIo(run, &m_->pio());
	if (!sink_)
		return Status::Ok();
	kvm_ft_rec_pio r;
	InitRec(&r.hdr, KVM_FT_REC_PIO, sizeof(r), pos_);
	r.port = run->io.port;
	r.size = run->io.size;
	r.dir = run->io.direction == KVM_EXIT_IO_IN ? KVM_FT_DIR_IN : KVM_FT_DIR_OUT;
	r.count = run->io.count;
	r.value = 0;
	memcpy(&r.value, IoData(run), run->io.size);
	Status s = Append(&r, sizeof(r));
	if (!s.ok() || run->io.count == 1)
		return s;
	uint32_t n = IoBytes(run);
	std::vector<uint8_t> d;
	NewPayloadRec<kvm_ft_vmm_data>(&d, KVM_FT_REC_VMM_DATA, pos_, IoData(run), n)->bytes = n;
	return Append(d.data(), d.size());
}

Status RecordReplay::ReplayIo()
{
	kvm_run *run = m_->vm().run();
	const kvm_ft_rec_hdr *r;
	Status s = src_->Next(&r);
	if (!s.ok())
		return s.Wrap("replay");
	if (!r) {
		bool live = false;
		s = LogEnded("inside an exit", &live, true);
		if (!s.ok() || !live)
			return s;
		return LogIo();
	}
	bool mmio = run->exit_reason == KVM_EXIT_MMIO;
	uint16_t want = mmio ? KVM_FT_REC_MMIO : KVM_FT_REC_PIO;
	if (r->type != want || r->pos != pos_ ||
	    r->len != (mmio ? sizeof(kvm_ft_rec_mmio) : sizeof(kvm_ft_rec_pio)))
		return Diverged("I/O exit without its I/O record in the log");
	if (mmio) {
		const auto *m = reinterpret_cast<const kvm_ft_rec_mmio *>(r);
		if (m->reserved[0] || m->reserved[1] || m->reserved[2])
			return Status::Error(EINVAL, fmt::format(
				"replay: malformed MMIO record at position {}", r->pos));
		bool wr = run->mmio.is_write;
		if (m->gpa != run->mmio.phys_addr || m->len != run->mmio.len ||
		    m->dir != (wr ? KVM_FT_DIR_OUT : KVM_FT_DIR_IN) ||
		    (wr && memcmp(&m->value, run->mmio.data, std::min<uint32_t>(m->len, 8))))
			return Diverged(fmt::format("log has MMIO {:#x}, guest accessed {:#x}",
						    m->gpa, run->mmio.phys_addr));
		bool owned = DoMmio(run, &m_->mmio());
		if (!wr) {
			// MMIO devices are deterministic: the model must agree.
			uint64_t got = 0;
			memcpy(&got, run->mmio.data, std::min<uint32_t>(m->len, 8));
			if (got != m->value)
				return Diverged(fmt::format("MMIO read of {:#x}: the log has {:#x}, "
					"this VM's devices return {:#x}{}", m->gpa, m->value, got,
					owned ? "" : " (no device there: a VM with a disk "
						     "replays with --disk)"));
		}
		return BlkError();
	}
	const auto *p = reinterpret_cast<const kvm_ft_rec_pio *>(r);
	bool in = run->io.direction == KVM_EXIT_IO_IN;
	if (p->port != run->io.port || p->size != run->io.size || p->count != run->io.count ||
	    p->dir != (in ? KVM_FT_DIR_IN : KVM_FT_DIR_OUT) ||
	    (!in && memcmp(&p->value, IoData(run), p->size)))
		return Diverged(fmt::format("log has port {:#x} {} {:#x}, guest did port {:#x} {} {:#x}",
			p->port, p->dir == KVM_FT_DIR_IN ? "in" : "out", p->value,
			run->io.port, in ? "in" : "out",
			in ? 0 : static_cast<uint64_t>(IoData(run)[0])));
	DoPortIo(run, &m_->pio());
	if (in)
		memcpy(IoData(run), &p->value, p->size);
	if (p->count == 1)
		return Status::Ok();
	if (!(s = src_->Next(&r)).ok())
		return s.Wrap("replay");
	if (!r)
		return Status::Error(ENODATA, fmt::format(
			"replay: log ends at position {} inside a string I/O", pos_));
	const auto *d = reinterpret_cast<const kvm_ft_vmm_data *>(r);
	uint32_t n = IoBytes(run);
	if (r->type != KVM_FT_REC_VMM_DATA || r->pos != pos_ || d->bytes != n ||
	    r->len < sizeof(*d) + n || d->reserved)
		return Diverged("string I/O without its data record");
	const uint8_t *bytes = reinterpret_cast<const uint8_t *>(d) + sizeof(*d);
	if (in)
		memcpy(IoData(run), bytes, n);
	else if (memcmp(IoData(run), bytes, n))
		return Diverged("string OUT data differs from the log");
	return Status::Ok();
}

Status RecordReplay::Finish(bool *ended)
{
	*ended = true;
	ended_ = true;
	status_ = m_->exit_port().status();
	if (src_) {
		const kvm_ft_rec_hdr *r;
		Status s = src_->Next(&r);
		if (!s.ok())
			return s.Wrap("replay");
		const auto *e = reinterpret_cast<const kvm_ft_vmm_end *>(r);
		if (r && r->type == KVM_FT_REC_VMM_END && (r->len != sizeof(*e) || e->reserved))
			return Status::Error(EINVAL, "replay: malformed END record");
		if (r && (r->type != KVM_FT_REC_VMM_END || r->pos != pos_ ||
			  static_cast<int>(e->status) != status_))
			return Diverged(fmt::format("guest ended with status {}; the log goes on",
						    status_));
		return Status::Ok();
	}
	if (defer_start_) {
		Status s = StartLog();
		if (!s.ok())
			return s;
	}
	kvm_ft_vmm_end e;
	InitRec(&e.hdr, KVM_FT_REC_VMM_END, sizeof(e), pos_);
	e.status = status_;
	e.reserved = 0;
	return Append(&e, sizeof(e));
}

} // namespace kvmft::vmm
