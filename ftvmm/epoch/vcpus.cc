// vcpus.cc - the vCPU threads of an Epochs VM and their wake-up protocol
// (vcpus.h).
#include "epoch/vcpus.h"

#include <poll.h>
#include <sys/ioctl.h>

#include <chrono>
#include <fmt/format.h>

#include "hw/exits.h"
#include "vm/kick.h"

namespace kvmft::vmm {

Vcpus::Vcpus(Machine *m) : m_(m)
{
	kick::Install();
}

Vcpus::~Vcpus()
{
	int status;
	Join(&status);
}

void Vcpus::Start(bool watch_tx)
{
	const unsigned n = m_->vm().nr_vcpus();
	if (VirtioNet *net = m_->net()) {
		net->set_on_rx_buffers([this] {
			std::lock_guard<std::mutex> g(mu_);
			if (rx_starved_) {
				rx_starved_ = false;
				WakeVcpu0Locked();
			}
		});
		if (watch_tx)
			net->set_on_tx([this] {
				std::lock_guard<std::mutex> g(mu_);
				if (!tx_wait_) {
					tx_wait_ = true;
					cv_.notify_all();
				}
			});
	}
	{
		std::lock_guard<std::mutex> g(mu_);
		ended_ = false;
		stop_ = false;
		err_ = Status::Ok();
		wake0_ = rx_wait_ = rx_starved_ = tx_wait_ = false;
	}
	// All run once every one is known: any may signal vCPU 0
	// (WakeVcpu0Locked). The barrier's state outlives Start: a thread
	// may leave its wait after Start returned.
	tids_.assign(n, pthread_t{});
	{
		std::lock_guard<std::mutex> g(start_mu_);
		started_ = 0;
	}
	for (unsigned i = 0; i < n; i++)
		thr_.emplace_back([this, i, n] {
			{
				std::unique_lock<std::mutex> l(start_mu_);
				tids_[i] = pthread_self();
				started_++;
				start_cv_.notify_all();
				start_cv_.wait(l, [&] { return started_ == n; });
			}
			VcpuLoop(i);
		});
	{
		std::unique_lock<std::mutex> l(start_mu_);
		start_cv_.wait(l, [&] { return started_ == n; });
	}
	if (m_->net())
		rx_thr_ = std::thread([this] { RxPoller(); });
}

bool Vcpus::TxSent()
{
	std::lock_guard<std::mutex> g(mu_);
	return tx_wait_;
}

bool Vcpus::Wait(uint64_t until_ns, bool tx_seen)
{
	const uint64_t now = MonotonicNs();
	std::unique_lock<std::mutex> l(mu_);
	cv_.wait_for(l, std::chrono::nanoseconds(until_ns > now ? until_ns - now : 0),
		     [&] { return ended_ || (!tx_seen && tx_wait_); });
	return !ended_;
}

void Vcpus::KickIfTimerDue()
{
	std::lock_guard<std::mutex> g(m_->io_mu());
	if (m_->pit().NextIrq() <= m_->Now())
		Kick(0);
}

Status Vcpus::Join(int *status)
{
	{
		std::lock_guard<std::mutex> g(mu_);
		ended_ = true;
		stop_ = false;
	}
	cv_.notify_all();
	for (unsigned i = 0; i < thr_.size(); i++) {
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
	*status = status_;
	return err_;
}

void Vcpus::Kick(unsigned i)
{
	if (i < tids_.size())
		kick::Send(tids_[i]);
}

void Vcpus::Fail(const Status &s)
{
	std::lock_guard<std::mutex> g(mu_);
	if (err_.ok() && !ended_)
		err_ = s;
	ended_ = true;
	cv_.notify_all();
}

void Vcpus::WakeVcpu0Locked()
{
	wake0_ = true;
	m_->vm().run(0)->immediate_exit = 1;
	cv_.notify_all();
	Kick(0);
}

std::string Vcpus::WakeState()
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

void Vcpus::NetInput()
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
			net_rx_++;
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

void Vcpus::RxPoller()
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
bool Vcpus::DeliverIrq()
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

Status Vcpus::HandleExit(unsigned i, bool *halted)
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

void Vcpus::VcpuLoop(unsigned i)
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

bool Vcpus::Stop()
{
	std::unique_lock<std::mutex> l(mu_);
	stop_ = true;
	for (unsigned i = 0; i < thr_.size(); i++) {
		m_->vm().run(i)->immediate_exit = 1;
		Kick(i);
	}
	cv_.notify_all(); // a vCPU 0 sleeping in HLT (the signal does not wake it)
	cv_.wait(l, [&] { return ended_ || parked_ == thr_.size(); });
	if (ended_)
		return false;
	tx_wait_ = false; // every vCPU is parked
	return true;
}

void Vcpus::Resume()
{
	{
		std::lock_guard<std::mutex> g(mu_);
		stop_ = false;
	}
	cv_.notify_all();
}

} // namespace kvmft::vmm
