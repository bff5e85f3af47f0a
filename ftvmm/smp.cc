// smp.cc - vCPU threads and the epochs they run and record (smp.h); their
// replay is in smp_apply.cc.
#include "smp.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fmt/format.h>

#include "cpu_state.h"
#include "disk.h"
#include "exits.h"
#include "virtio_blk.h"
#include "virtio_net.h"

namespace kvmft::vmm {

namespace {
int SmpKickSignal() { return SIGRTMIN + 2; }
void OnSmpKick(int) {}

bool PageIsZero(const uint8_t *p)
{
	const auto *w = reinterpret_cast<const uint64_t *>(p);
	for (size_t i = 0; i < kPageSize / 8; i++)
		if (w[i])
			return false;
	return true;
}
} // namespace

SmpVm::SmpVm(Machine *m, const SmpConfig &cfg) : m_(m), cfg_(cfg)
{
	struct sigaction sa {};
	sa.sa_handler = OnSmpKick;
	sigemptyset(&sa.sa_mask);
	sigaction(SmpKickSignal(), &sa, nullptr);
}

SmpVm::~SmpVm()
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

void SmpVm::Kick(unsigned i)
{
	if (i < tids_.size())
		pthread_kill(tids_[i], SmpKickSignal());
}

void SmpVm::Fail(const Status &s)
{
	std::lock_guard<std::mutex> g(mu_);
	if (err_.ok() && !ended_)
		err_ = s;
	ended_ = true;
	cv_.notify_all();
}

void SmpVm::WakeVcpu0Locked()
{
	wake0_ = true;
	m_->vm().run(0)->immediate_exit = 1;
	cv_.notify_all();
	Kick(0);
}

std::string SmpVm::WakeState()
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

void SmpVm::NetInput()
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

void SmpVm::RxPoller()
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
bool SmpVm::DeliverIrq()
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

Status SmpVm::HandleExit(unsigned i, bool *halted)
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

void SmpVm::VcpuLoop(unsigned i)
{
	kvm_run *run = m_->vm().run(i);
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
void SmpVm::Stop()
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

void SmpVm::Resume()
{
	{
		std::lock_guard<std::mutex> g(mu_);
		stop_ = false;
	}
	cv_.notify_all();
}

Status SmpVm::ReleaseOutputs()
{
	const uint64_t ack = ack_();
	if (m_->net())
		m_->net()->link()->Release(ack);
	if (!m_->blk())
		return Status::Ok();
	std::lock_guard<std::mutex> g(m_->io_mu());
	return m_->blk()->disk()->Release(ack).Wrap("release disk writes");
}

Status SmpVm::LogNetSent()
{
	if (!sink_ || !ack_ || !m_->net())
		return Status::Ok();
	const uint64_t n = m_->net()->link()->sent_count();
	if (n <= net_sent_logged_)
		return Status::Ok();
	net_sent_logged_ = n;
	kvm_ft_vmm_net_sent r;
	InitRec(&r.hdr, KVM_FT_REC_VMM_NET_SENT, sizeof(r), number_);
	r.sent_pos = n;
	Status s = sink_->Append(&r, sizeof(r));
	return s.ok() ? sink_->Flush() : s;
}

Status SmpVm::WriteEpoch()
{
	Vm &vm = m_->vm();
	const uint64_t t0 = MonotonicNowNs();
	uint64_t bytes = 0;
	auto append = [&](void *rec, uint32_t len) {
		bytes += len;
		return sink_->Append(rec, len);
	};
	const uint32_t kind = number_ ? KVM_FT_CKPT_DELTA : KVM_FT_CKPT_FULL;
	kvm_ft_vmm_epoch e{};
	InitRec(&e.hdr, KVM_FT_REC_VMM_EPOCH_BEGIN, sizeof(e), number_);
	e.number = number_;
	e.kind = kind;
	e.nr_vcpus = vm.nr_vcpus();
	Status s = append(&e, sizeof(e));
	if (!s.ok())
		return s;
	std::vector<uint64_t> dirty;
	if (!(s = vm.FetchDirty(&dirty)).ok())
		return s;
	std::vector<uint8_t> buf(sizeof(kvm_ft_vmm_page) + kPageSize);
	auto *p = reinterpret_cast<kvm_ft_vmm_page *>(buf.data());
	uint32_t pages = 0;
	for (uint64_t pg = 0; pg < vm.mem_bytes() / kPageSize; pg++) {
		const uint8_t *src = vm.mem() + pg * kPageSize;
		if (kind == KVM_FT_CKPT_DELTA ? !(dirty[pg / 64] & (1ULL << (pg % 64)))
					      : PageIsZero(src))
			continue;
		InitRec(&p->hdr, KVM_FT_REC_VMM_CKPT_PAGE, buf.size(), number_);
		p->gpa = pg * kPageSize;
		memcpy(buf.data() + sizeof(*p), src, kPageSize);
		if (!(s = append(buf.data(), buf.size())).ok())
			return s;
		pages++;
	}
	for (unsigned i = 0; i < vm.nr_vcpus(); i++) {
		std::vector<uint8_t> cpu;
		if (!(s = SaveCpu(vm, &cpu, i)).ok())
			return s.Wrap(fmt::format("vCPU {}", i));
		auto *h = reinterpret_cast<kvm_ft_rec_hdr *>(cpu.data());
		InitRec(h, KVM_FT_REC_VMM_CKPT_CPU, cpu.size(), number_);
		if (!(s = append(cpu.data(), cpu.size())).ok())
			return s;
	}
	for (Stateful *d : m_->devices()) {
		std::vector<uint8_t> state;
		d->Save(&state);
		std::vector<uint8_t> rec((sizeof(kvm_ft_vmm_dev) + state.size() + 7) & ~size_t{7});
		auto *r = reinterpret_cast<kvm_ft_vmm_dev *>(rec.data());
		InitRec(&r->hdr, KVM_FT_REC_VMM_CKPT_DEV, rec.size(), number_);
		r->id = d->state_id();
		r->bytes = static_cast<uint32_t>(state.size());
		memcpy(rec.data() + sizeof(*r), state.data(), state.size());
		if (!(s = append(rec.data(), rec.size())).ok())
			return s;
	}
	// The console bytes the guest wrote in the epoch, so that a
	// secondary applying it prints them too: a failover then loses no
	// byte the primary had not released yet.
	const std::string out = m_->console().TakeCaptured();
	for (size_t off = 0; off < out.size(); off += kEpochDataMax) {
		const size_t n = std::min(out.size() - off, kEpochDataMax);
		std::vector<uint8_t> rec((sizeof(kvm_ft_vmm_data) + n + 7) & ~size_t{7});
		auto *d = reinterpret_cast<kvm_ft_vmm_data *>(rec.data());
		InitRec(&d->hdr, KVM_FT_REC_VMM_DATA, rec.size(), number_);
		d->bytes = static_cast<uint32_t>(n);
		memcpy(rec.data() + sizeof(*d), out.data() + off, n);
		if (!(s = append(rec.data(), rec.size())).ok())
			return s;
	}
	InitRec(&e.hdr, KVM_FT_REC_VMM_EPOCH_END, sizeof(e), number_);
	e.pages = pages;
	e.mem_hash = cfg_.hash_epochs ? vm.MemHash() : 0;
	e.console_bytes = m_->console().produced();
	if (!(s = append(&e, sizeof(e))).ok())
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
		if (!ack_ && disk->mode() == Disk::kHold &&
		    !(s = disk->Release(sink_->tag())).ok())
			return s.Wrap("write the epoch's disk writes");
	}
	if (m_->net())
		m_->net()->link()->Retag(kEpochPending, sink_->tag());
	number_++;
	st_.epochs++;
	st_.pages += pages;
	st_.epoch_bytes.push_back(bytes);
	if (number_ > 1) // epoch 0 is written before the vCPUs start
		st_.stop_ns.push_back(MonotonicNowNs() - t0);
	return Status::Ok();
}

Status SmpVm::Run(int *status)
{
	const unsigned n = m_->vm().nr_vcpus();
	Status s;
	if (ack_) {
		m_->console().set_hold(true);
		m_->console().set_tag(kEpochPending);
	}
	if (Disk *disk = m_->blk() ? m_->blk()->disk() : nullptr) {
		// Going live: first the pending writes of the last epoch
		// applied, which the primary may not have written.
		// (A private copy, kEpochsPrivate, has them already.) Recorded,
		// writes are held until their epoch is logged: every one is
		// then in the state of the epoch that issued it, so that a
		// secondary with a disk of its own gets them all.
		if (disk->mode() == Disk::kEpochs && !(s = disk->ApplyAll()).ok())
			return s.Wrap("go-live: write the last epoch's pending disk writes");
		disk->set_mode(ack_ || sink_ ? Disk::kHold : Disk::kDirect);
		disk->set_tag(kEpochPending);
	}
	if (VirtioNet *net = m_->net()) {
		NetLink *l = net->link();
		if (l->mode() == NetLink::kEpochs) {
			// Going live: frames in our tap were for the old primary;
			// the last epoch's held frames it did not report sent
			// may not have been; then tell the switches where the
			// VM's MAC is now.
			l->Discard();
			st_.net_resent = l->SendReplayed();
			l->Announce(net->mac().data());
		}
		l->set_mode(ack_ ? NetLink::kHold : NetLink::kDirect);
		l->set_tag(kEpochPending, 0);
		net->set_on_rx_buffers([this] {
			std::lock_guard<std::mutex> g(mu_);
			if (rx_starved_) {
				rx_starved_ = false;
				WakeVcpu0Locked();
			}
		});
		if (sink_ && ack_ && cfg_.min_epoch_ns)
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
	uint64_t epoch_start = MonotonicNowNs();
	uint64_t next_epoch = epoch_start + cfg_.epoch_ns;
	// A held frame ends its epoch at epoch_start + min_epoch_ns.
	const uint64_t early_ns = std::min(cfg_.min_epoch_ns, cfg_.epoch_ns);
	bool shortened = false; // this epoch ends early
	for (;;) {
		uint64_t now = MonotonicNowNs();
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
		now = MonotonicNowNs();
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
			if (s.ok() && at_epoch_)
				s = at_epoch_();
			if (!s.ok()) {
				Fail(s.Wrap(fmt::format("epoch {}", number_)));
				break;
			}
			Resume();
			if (ack_) {
				m_->console().Release(ack_());
				if (!(s = ReleaseOutputs()).ok() || !(s = LogNetSent()).ok()) {
					Fail(s);
					break;
				}
			}
			epoch_start = MonotonicNowNs();
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
	if (ack_) {
		const uint64_t want = sink_ ? sink_->tag() : 0;
		const uint64_t until = MonotonicNowNs() + cfg_.hold_timeout_ns;
		while (ack_() < want && MonotonicNowNs() < until)
			usleep(200);
		m_->console().Release(ack_());
		if (!(s = ReleaseOutputs()).ok())
			return s;
		const size_t writes = m_->blk() ? m_->blk()->disk()->overlay().size() : 0;
		const size_t frames = m_->net() ? m_->net()->link()->held() : 0;
		if (m_->console().held() || writes || frames)
			return Status::Error(ETIMEDOUT, fmt::format(
				"{} console bytes, {} disk writes and {} frames never "
				"acknowledged: not released", m_->console().held(), writes,
				frames));
	}
	m_->console().Flush();
	return Status::Ok();
}

} // namespace kvmft::vmm
