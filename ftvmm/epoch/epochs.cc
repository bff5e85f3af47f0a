// epochs.cc - vCPU threads and the epochs they run and record (epochs.h);
// their replay is in apply.cc.
#include "epoch/epochs.h"

#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fmt/format.h>

#include "checkpoint/codec.h"
#include "ftlog/record.h"
#include "hw/exits.h"
#include "vm/kick.h"

namespace kvmft::vmm {

Epochs::Epochs(Machine *m, const ModeConfig &cfg) : m_(m), cfg_(cfg), out_(m)
{
	kick::Install();
}

void Epochs::SetStopPoints(uint64_t every, std::function<Status()> fn)
{
	stop_every_ = every ? every : 1;
	at_epoch_ = std::move(fn);
}

void Epochs::SetAck(std::function<uint64_t()> ack)
{
	out_.SetAck(std::move(ack), sink_);
}

Epochs::~Epochs()
{
	{
		std::lock_guard<std::mutex> g(mu_);
		ended_ = true;
		stop_ = false;
	}
	cv_.notify_all();
	for (unsigned i = 0; i < thr_.size(); i++)
		Kick(i);
	for (auto &t : thr_)
		t.join();
	if (rx_thr_.joinable())
		rx_thr_.join();
}

void Epochs::Kick(unsigned i)
{
	if (i < tids_.size())
		kick::Send(tids_[i]);
}

void Epochs::Fail(const Status &s)
{
	std::lock_guard<std::mutex> g(mu_);
	if (err_.ok() && !ended_)
		err_ = s;
	ended_ = true;
	cv_.notify_all();
}

void Epochs::WakeVcpu0Locked()
{
	wake0_ = true;
	m_->vm().run(0)->immediate_exit = 1;
	cv_.notify_all();
	Kick(0);
}

std::string Epochs::WakeState()
{
	static const char *const at[] = {"in KVM_RUN", "halted, waiting", "parked",
					 "at its devices"};
	std::lock_guard<std::mutex> io(m_->io_mu());
	std::lock_guard<std::mutex> g(mu_);
	const kvm_run *run = m_->vm().run(0);
	return fmt::format("vCPU 0 {} (last exit {}, if {} ready {} window asked {}), {} vectors "
			   "injected, {}; wake0 {} rx_wait {} rx_starved {} tx_wait {} stop {} "
			   "ended {} parked {}", at[vcpu0_at_.load()], run->exit_reason,
			   run->if_flag, run->ready_for_interrupt_injection,
			   run->request_interrupt_window, injected_.load(), m_->pic().Describe(),
			   wake0_, rx_wait_, rx_starved_, tx_wait_, stop_, ended_, parked_);
}

void Epochs::NetInput()
{
	VirtioNet *net = m_->net();
	if (!net)
		return;
	{
		std::lock_guard<std::mutex> g(mu_);
		if (!rx_wait_ || rx_starved_)
			return;
	}
	uint8_t buf[NetLink::kMaxFrame];
	bool drained = false;
	// A bounded batch per entry: a flood does not starve the guest.
	for (int i = 0; i < 64 && net->CanReceive(); i++) {
		size_t n = net->link()->Receive(buf);
		if (!n) {
			drained = true;
			break;
		}
		VirtioNet::RxResult r = net->Receive(buf, n);
		if (r == VirtioNet::kDelivered)
			st_.net_rx++;
		else if (r == VirtioNet::kBadChain)
			break;
	}
	std::lock_guard<std::mutex> g(mu_);
	if (drained) {
		rx_wait_ = false;
		cv_.notify_all(); // the poller polls again
	} else if (!net->CanReceive()) {
		rx_starved_ = true; // until the guest adds buffers
	}
}

void Epochs::RxPoller()
{
	const int fd = m_->net()->link()->fd();
	for (;;) {
		{
			std::unique_lock<std::mutex> l(mu_);
			cv_.wait(l, [&] { return ended_ || !rx_wait_; });
			if (ended_)
				return;
		}
		// Bounded, so that the end of the run is seen.
		pollfd p{fd, POLLIN, 0};
		if (poll(&p, 1, 50) <= 0)
			continue;
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
			return; // the link is gone: no more input
		std::lock_guard<std::mutex> g(mu_);
		rx_wait_ = true;
		WakeVcpu0Locked();
	}
}

// vCPU 0 only, with io_mu held: frames into the guest, the timer edge into
// the PIC, then inject the PIC's vector if the guest can take it now, else
// ask for a window. True if a vector was injected.
bool Epochs::DeliverIrq()
{
	NetInput();
	Pic &pic = m_->pic();
	uint64_t now = m_->Now();
	if (m_->pit().NextIrq() <= now && m_->pit().PollIrq(now))
		pic.Raise(0);
	kvm_run *run = m_->vm().run(0);
	if (!pic.Pending()) {
		run->request_interrupt_window = 0;
		return false;
	}
	bool injected = false;
	if (run->ready_for_interrupt_injection && run->if_flag) {
		int vec = pic.Ack();
		if (vec >= 0) {
			Status s = m_->vm().Inject(static_cast<uint32_t>(vec));
			if (!s.ok())
				Fail(s);
			injected = s.ok();
			injected_++;
		}
		run->request_interrupt_window = 0;
	} else {
		run->request_interrupt_window = 1;
	}
	return injected;
}

Status Epochs::HandleExit(unsigned i, bool *halted)
{
	kvm_run *run = m_->vm().run(i);
	*halted = false;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
	case KVM_EXIT_MMIO: {
		std::lock_guard<std::mutex> g(m_->io_mu());
		const bool irq = m_->pic().Pending();
		if (run->exit_reason == KVM_EXIT_IO)
			DoPortIo(run, &m_->pio());
		else
			DoMmio(run, &m_->mmio());
		if (i && !irq && m_->pic().Pending()) {
			// A device interrupt this exit raised: vCPU 0 takes it.
			std::lock_guard<std::mutex> g2(mu_);
			WakeVcpu0Locked();
		}
		if (m_->exit_port().done()) {
			std::lock_guard<std::mutex> g2(mu_);
			if (!ended_) {
				ended_ = true;
				status_ = m_->exit_port().status();
			}
			cv_.notify_all();
		}
		return Status::Ok();
	}
	case KVM_EXIT_HLT:
		*halted = true;
		return Status::Ok();
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		return Status::Ok();
	default:
		return Status::Error(EFAULT, fmt::format("vCPU {}: unexpected exit {} at rip {:#x}",
							 i, run->exit_reason, run->s.regs.regs.rip));
	}
}

void Epochs::VcpuLoop(unsigned i)
{
	kvm_run *run = m_->vm().run(i);
	kick::Bind(run);
	bool halted = false;
	for (;;) {
		{
			std::unique_lock<std::mutex> l(mu_);
			// A vCPU other than 0 that halted has nothing to wake
			// it (interrupts go to vCPU 0): it stays parked.
			bool parked_forever = halted && i != 0;
			if ((stop_ || parked_forever) && !ended_) {
				l.unlock();
				Status s = m_->vm().Settle(i); // completes a pending I/O
				l.lock();
				if (!s.ok()) {
					l.unlock();
					Fail(s);
					return;
				}
				parked_++;
				if (i == 0)
					vcpu0_at_ = kParked;
				cv_.notify_all();
				cv_.wait(l, [&] { return ended_ || (!stop_ && !parked_forever); });
				parked_--;
			}
			if (ended_)
				return;
			run->immediate_exit = 0;
		}
		if (i == 0) {
			vcpu0_at_ = kDevices;
			std::lock_guard<std::mutex> g(m_->io_mu());
			if (halted) {
				uint64_t next = m_->pit().NextIrq();
				if (!run->if_flag || (next == UINT64_MAX && !m_->net())) {
					Fail(Status::Error(EFAULT, fmt::format(
						"vCPU 0 halted at rip {:#x} with {}", run->s.regs.regs.rip,
						run->if_flag ? "no timer programmed" : "interrupts disabled")));
					return;
				}
			}
			// An injected vector wakes the guest from its HLT.
			if (DeliverIrq())
				halted = false;
		}
		if (i == 0 && halted && !m_->pic().Pending()) {
			// Sleep until the timer's next edge, device input, a
			// stop or the end.
			uint64_t next = m_->pit().NextIrq();
			uint64_t now = m_->Now();
			std::unique_lock<std::mutex> l(mu_);
			auto woken = [&] { return stop_ || ended_ || wake0_; };
			vcpu0_at_ = kHaltedWait;
			if (next == UINT64_MAX)
				cv_.wait(l, woken);
			else
				cv_.wait_for(l, std::chrono::nanoseconds(next > now ? next - now : 0),
					     woken);
			wake0_ = false;
			continue;
		}
		halted = false;
		if (i == 0)
			vcpu0_at_ = kInRun;
		int r = ioctl(m_->vm().vcpu_fd(i), KVM_RUN, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			Fail(Status::Errno(fmt::format("KVM_RUN vCPU {}", i)));
			return;
		}
		Status s = HandleExit(i, &halted);
		if (!s.ok()) {
			Fail(s);
			return;
		}
	}
}

// Parks every vCPU outside KVM_RUN with its last exit completed.
void Epochs::Stop()
{
	std::unique_lock<std::mutex> l(mu_);
	stop_ = true;
	for (unsigned i = 0; i < thr_.size(); i++) {
		m_->vm().run(i)->immediate_exit = 1;
		Kick(i);
	}
	cv_.notify_all(); // a vCPU 0 sleeping in HLT (the signal does not wake it)
	cv_.wait(l, [&] { return ended_ || parked_ == thr_.size(); });
}

void Epochs::Resume()
{
	{
		std::lock_guard<std::mutex> g(mu_);
		stop_ = false;
	}
	cv_.notify_all();
}

Status Epochs::LogNetSent()
{
	if (!sink_ || !out_.held_by_ack() || !m_->net())
		return Status::Ok();
	bool logged = false;
	Status s = LogSent(sink_, number_, m_->net()->link()->sent_count(), &net_sent_logged_,
			   &logged);
	return s.ok() && logged ? sink_->Flush() : s;
}

Status Epochs::WriteEpoch()
{
	Vm &vm = m_->vm();
	const uint64_t t0 = MonotonicNs();
	CountingSink out(sink_);
	const uint32_t kind = number_ ? KVM_FT_CKPT_DELTA : KVM_FT_CKPT_FULL;
	kvm_ft_vmm_epoch e{};
	InitRec(&e.hdr, KVM_FT_REC_VMM_EPOCH_BEGIN, sizeof(e), number_);
	e.number = number_;
	e.kind = kind;
	e.nr_vcpus = vm.nr_vcpus();
	Status s = out.Append(&e, sizeof(e));
	uint32_t pages = 0;
	if (s.ok())
		s = PutState(vm, m_->devices(), &out, kind, number_, &pages);
	if (!s.ok())
		return s;
	// The console bytes the guest wrote in the epoch, so that a
	// secondary applying it prints them too: a failover then loses no
	// byte the primary had not released yet.
	const std::string console = m_->console().TakeCaptured();
	std::vector<uint8_t> rec;
	for (size_t off = 0; off < console.size(); off += kEpochDataMax) {
		const size_t n = std::min(console.size() - off, kEpochDataMax);
		auto *d = NewPayloadRec<kvm_ft_vmm_data>(&rec, KVM_FT_REC_VMM_DATA, number_,
							 console.data() + off, n);
		d->bytes = static_cast<uint32_t>(n);
		if (!(s = out.Append(rec.data(), rec.size())).ok())
			return s;
	}
	InitRec(&e.hdr, KVM_FT_REC_VMM_EPOCH_END, sizeof(e), number_);
	e.pages = pages;
	e.mem_hash = cfg_.hash_epochs ? vm.MemHash() : 0;
	e.console_bytes = m_->console().produced();
	if (!(s = out.Append(&e, sizeof(e))).ok())
		return s;
	if (!(s = sink_->Flush()).ok())
		return s;
	// The epoch's console bytes and disk writes wait for the ACK of its
	// end (the vCPUs are stopped: no write is being added). Without an
	// ACK (a log file) its disk writes, held so that the epoch's state
	// carries them, are written now that it is logged.
	m_->console().Retag(kEpochPending, sink_->tag());
	if (m_->blk()) {
		std::lock_guard<std::mutex> g(m_->io_mu());
		Disk *disk = m_->blk()->disk();
		disk->Retag(kEpochPending, sink_->tag());
		if (!out_.held_by_ack() && disk->mode() == Disk::kHold &&
		    !(s = disk->Release(sink_->tag())).ok())
			return s.Wrap("write the epoch's disk writes");
	}
	if (m_->net())
		m_->net()->link()->Retag(kEpochPending, sink_->tag());
	number_++;
	st_.epochs++;
	st_.pages += pages;
	st_.epoch_bytes.push_back(out.bytes());
	if (number_ > 1) // epoch 0 is written before the vCPUs start
		st_.stop_ns.push_back(MonotonicNs() - t0);
	return Status::Ok();
}

Status Epochs::Run(int *status)
{
	const unsigned n = m_->vm().nr_vcpus();
	Status s;
	const bool held = out_.held_by_ack();
	if (held)
		m_->console().set_tag(kEpochPending);
	// Going live (a secondary that applied epochs): the last epoch's
	// pending disk writes and the frames the primary did not report sent.
	if (!(s = GoLiveOutputs(*m_, &st_.net_resent)).ok())
		return s;
	if (Disk *disk = m_->blk() ? m_->blk()->disk() : nullptr) {
		// Recorded, writes are held until their epoch is logged: every
		// one is then in the state of the epoch that issued it, so that
		// a secondary with a disk of its own gets them all.
		disk->set_mode(held || sink_ ? Disk::kHold : Disk::kDirect);
		disk->set_tag(kEpochPending);
	}
	if (VirtioNet *net = m_->net()) {
		NetLink *l = net->link();
		l->set_mode(held ? NetLink::kHold : NetLink::kDirect);
		l->set_tag(kEpochPending, 0);
		net->set_on_rx_buffers([this] {
			std::lock_guard<std::mutex> g(mu_);
			if (rx_starved_) {
				rx_starved_ = false;
				WakeVcpu0Locked();
			}
		});
		if (sink_ && held && cfg_.min_epoch_ns)
			net->set_on_tx([this] {
				std::lock_guard<std::mutex> g(mu_);
				if (!tx_wait_) {
					tx_wait_ = true;
					cv_.notify_all();
				}
			});
	}
	number_ = 0; // a new log (also after going live) starts FULL
	net_sent_logged_ = 0;
	m_->console().set_capture(sink_ != nullptr);
	// Epochs are deltas of KVM's dirty log, from this FULL epoch 0 on.
	if (sink_ && !(s = m_->vm().EnableDirtyLog()).ok())
		return s;
	if (sink_ && !(s = WriteEpoch()).ok())
		return s.Wrap("epoch 0");
	{
		std::lock_guard<std::mutex> g(mu_);
		ended_ = false;
		stop_ = false;
		err_ = Status::Ok();
		wake0_ = rx_wait_ = rx_starved_ = tx_wait_ = false;
	}
	tids_.assign(n, pthread_t{});
	std::mutex start_mu;
	std::condition_variable start_cv;
	unsigned started = 0;
	for (unsigned i = 0; i < n; i++)
		thr_.emplace_back([this, i, n, &start_mu, &start_cv, &started] {
			{
				// All run once every one is known: any may
				// signal vCPU 0 (WakeVcpu0Locked).
				std::unique_lock<std::mutex> l(start_mu);
				tids_[i] = pthread_self();
				started++;
				start_cv.notify_all();
				start_cv.wait(l, [&] { return started == n; });
			}
			VcpuLoop(i);
		});
	{
		std::unique_lock<std::mutex> l(start_mu);
		start_cv.wait(l, [&] { return started == n; });
	}
	if (m_->net())
		rx_thr_ = std::thread([this] { RxPoller(); });
	uint64_t epoch_start = MonotonicNs();
	uint64_t next_epoch = epoch_start + cfg_.epoch_ns;
	// A held frame ends its epoch at epoch_start + min_epoch_ns.
	const uint64_t early_ns = std::min(cfg_.min_epoch_ns, cfg_.epoch_ns);
	bool shortened = false; // this epoch ends early
	uint64_t stops = 0;	// epoch ends, for SetStopPoints
	for (;;) {
		uint64_t now = MonotonicNs();
		uint64_t wake = now + cfg_.slice_ns;
		const bool epochs = sink_ || at_epoch_;
		{
			std::unique_lock<std::mutex> l(mu_);
			const bool tx_seen = tx_wait_;
			if (epochs && tx_seen && !shortened && epoch_start + early_ns < next_epoch) {
				shortened = true;
				next_epoch = epoch_start + early_ns;
			}
			if (epochs && next_epoch < wake)
				wake = next_epoch;
			cv_.wait_for(l, std::chrono::nanoseconds(wake > now ? wake - now : 0),
				     [&] { return ended_ || (!tx_seen && tx_wait_); });
			if (ended_)
				break;
		}
		now = MonotonicNs();
		if (epochs && now >= next_epoch) {
			Stop();
			{
				std::lock_guard<std::mutex> g(mu_);
				if (ended_)
					break;
				tx_wait_ = false; // every vCPU is parked
			}
			if (shortened)
				st_.early_epochs++;
			shortened = false;
			s = sink_ ? WriteEpoch() : Status::Ok();
			if (s.ok() && at_epoch_ && ++stops % stop_every_ == 0)
				s = at_epoch_();
			if (!s.ok()) {
				Fail(s.Wrap(fmt::format("epoch {}", number_)));
				break;
			}
			Resume();
			if (held) {
				if (!(s = out_.Release()).ok() || !(s = LogNetSent()).ok()) {
					Fail(s);
					break;
				}
			}
			epoch_start = MonotonicNs();
			next_epoch = epoch_start + cfg_.epoch_ns;
		} else {
			std::lock_guard<std::mutex> g(m_->io_mu());
			if (m_->pit().NextIrq() <= m_->Now())
				Kick(0);
		}
	}
	// The guest ended (or failed): stop the others, keep its last state.
	{
		std::lock_guard<std::mutex> g(mu_);
		ended_ = true;
		stop_ = false;
	}
	cv_.notify_all();
	for (unsigned i = 0; i < n; i++) {
		m_->vm().run(i)->immediate_exit = 1;
		Kick(i);
	}
	for (auto &t : thr_)
		t.join();
	if (rx_thr_.joinable())
		rx_thr_.join();
	if (m_->net()) {
		m_->net()->set_on_rx_buffers(nullptr);
		m_->net()->set_on_tx(nullptr);
	}
	thr_.clear();
	tids_.clear();
	if (!err_.ok())
		return err_;
	*status = status_;
	if (sink_) {
		// The last epoch covers the last console bytes; END follows.
		if (!(s = WriteEpoch()).ok())
			return s.Wrap("last epoch");
		kvm_ft_vmm_end end{};
		InitRec(&end.hdr, KVM_FT_REC_VMM_END, sizeof(end), number_);
		end.status = static_cast<uint32_t>(status_);
		if (!(s = sink_->Append(&end, sizeof(end))).ok() || !(s = sink_->Flush()).ok())
			return s;
	}
	// The last outputs go out once the ACK covers them.
	if (!(s = out_.Drain(cfg_.hold_timeout_ns)).ok())
		return s;
	m_->console().Flush();
	return Status::Ok();
}

} // namespace kvmft::vmm
