// daemon.cc - roles, channel and failover (daemon.h).
#include "daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "channel/net.h"
#include "identity.h"

namespace kvmft::hbd {

using kvmft::Status;
using kvmft::UniqueFd;

namespace {

int64_t NowMs()
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

constexpr int64_t kMsNs = 1000000;

} // namespace

Daemon::Daemon(Config c) : c_(std::move(c)), role_(c_.role) {}

Daemon::~Daemon()
{
	control_stop_ = true;
	if (control_.valid())
		shutdown(control_.get(), SHUT_RDWR);
	if (control_thr_.joinable())
		control_thr_.join();
	StopActive();
}

void Daemon::Event(const std::string &type, const std::string &msg)
{
	std::fprintf(stderr, "fthbd %s: %s: %s\n", c_.name.c_str(), type.c_str(), msg.c_str());
}

void Daemon::SetState(const std::string &s)
{
	std::lock_guard<std::mutex> g(mu_);
	state_ = s;
}

Status Daemon::Setup()
{
	kvmft::TlsConfig tc{c_.ca, c_.cert, c_.key};
	Status st = kvmft::TlsContext::Create(tc, false, &client_ctx_);
	if (st.ok())
		st = kvmft::TlsContext::Create(tc, true, &server_ctx_);
	if (!st.ok())
		return st.Wrap("TLS");
	wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
	uq_ = std::make_unique<UnsafeQueue>(c_.mode, uint64_t{c_.max_unsafe_mb} << 20, wake_.get());
	st = kvmft::lock::Holder::Open(c_.lock_area, c_.host_id, c_.name, 60000 * kMsNs, &lock_);
	if (!st.ok())
		return st.Wrap("lock area " + c_.lock_area);
	control_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
	struct sockaddr_un a {};
	a.sun_family = AF_UNIX;
	if (c_.control_socket.size() >= sizeof a.sun_path)
		return Status::Error(ENAMETOOLONG, "control socket path " + c_.control_socket);
	std::snprintf(a.sun_path, sizeof a.sun_path, "%s", c_.control_socket.c_str());
	unlink(a.sun_path);
	if (bind(control_.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) < 0 ||
	    listen(control_.get(), 8) < 0)
		return Status::Errno("control socket " + c_.control_socket);
	control_thr_ = std::thread([this] { ControlLoop(); });
	return Status::Ok();
}

Status Daemon::Run(const std::atomic<bool> &stop)
{
	Status st = Setup();
	if (!st.ok())
		return st;
	if (role_ == Role::kActive) {
		SetState("starting");
		st = lock_->Acquire(c_.service, int64_t{c_.acquire_timeout_ms} * kMsNs,
				    [this](const std::string &why) { OnLockLost(why); });
		if (!st.ok())
			return st.Wrap("service " + c_.service + " is active elsewhere");
		st = BecomeActive();
		if (!st.ok())
			return st;
	} else {
		std::string note;
		st = SafeQueue::Open(c_.safe_queue, &sq_, &safe_last_, &note);
		if (!st.ok())
			return st;
		if (!note.empty())
			Event("safe_queue", note);
		safe_bytes_ = sq_.bytes();
		SetState("passive");
		Event("passive", "safe queue at seq " + std::to_string(safe_last_));
		RunPassive(stop);
	}
	if (role_ == Role::kActive)
		RunActive(stop);
	StopActive();
	return Status::Ok();
}

Status Daemon::BecomeActive()
{
	Status st = fs_.Start(c_.data_dir, uq_.get());
	if (st.ok())
		st = AddAddress(c_.public_dev, c_.public_addr);
	if (!st.ok())
		return st;
	has_identity_ = true;
	st = GratuitousArp(c_.public_dev, c_.public_addr);
	if (!st.ok())
		Event("garp", st.msg());
	st = StartApp();
	if (!st.ok())
		return st;
	{
		std::lock_guard<std::mutex> g(mu_);
		role_ = Role::kActive;
		state_ = "active";
	}
	Event("active", "serving " + c_.public_addr + " on " + c_.public_dev);
	return Status::Ok();
}

// Fence thread: the lease is gone, so another server may take the
// service: stop serving at once, without waiting on storage.
void Daemon::OnLockLost(const std::string &why)
{
	Event("lock_lost", why + "; stopping the application and dropping " + c_.public_addr);
	if (app_ > 0)
		kill(-app_, SIGKILL);
	Status st = DelAddress(c_.public_dev, c_.public_addr);
	if (!st.ok())
		Event("identity", st.msg());
	_exit(3);
}

Status Daemon::StartApp()
{
	pid_t p = fork();
	if (p < 0)
		return Status::Errno("fork for the application");
	if (p == 0) {
		setsid();
		setenv("FTHB_DATA_DIR", c_.data_dir.c_str(), 1);
		execl("/bin/sh", "sh", "-c", c_.app.c_str(), static_cast<char *>(nullptr));
		_exit(127);
	}
	app_ = p;
	return Status::Ok();
}

void Daemon::StopApp()
{
	if (app_ <= 0)
		return;
	kill(-app_, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(app_, nullptr, WNOHANG) == app_) {
			app_ = -1;
			return;
		}
		usleep(20000);
	}
	kill(-app_, SIGKILL);
	waitpid(app_, nullptr, 0);
	app_ = -1;
}

void Daemon::StopActive()
{
	StopApp();
	fs_.Stop();
	if (has_identity_) {
		Status st = DelAddress(c_.public_dev, c_.public_addr);
		if (!st.ok())
			Event("identity", st.msg());
		has_identity_ = false;
	}
}

// The active connects to the passive and ships its unsafe queue.
void Daemon::RunActive(const std::atomic<bool> &stop)
{
	int64_t heard = NowMs();
	bool degraded = false;
	while (!stop) {
		if (!degraded && uq_->Stats().synced && NowMs() - heard > c_.degrade_ms()) {
			uq_->Degrade();
			degraded = true;
			Event("peer_unsynchronised", "channel silent for " +
							     std::to_string(NowMs() - heard) + " ms");
		}
		UniqueFd fd;
		kvmft::SockAddr local = c_.listen;
		reinterpret_cast<sockaddr_in *>(&local.ss)->sin_port = 0;
		Status st = kvmft::ConnectBound(local, c_.peer, {c_.listen_dev, c_.timeout_ms},
						static_cast<int>(c_.connect_timeout_ms), &fd);
		std::unique_ptr<kvmft::TlsConn> tls;
		if (st.ok()) {
			tls = std::make_unique<kvmft::TlsConn>(client_ctx_, std::move(fd));
			st = tls->Handshake({c_.peer_name, ""}, static_cast<int>(c_.connect_timeout_ms));
		}
		if (!st.ok()) {
			usleep(200000);
			continue;
		}
		PeerConn pc(std::move(tls));
		bool hello = false;
		int64_t sent_hb = 0;
		uint64_t last_ack = 0;
		heard = NowMs();
		{
			std::lock_guard<std::mutex> g(mu_);
			channel_up_ = true;
		}
		while (!stop) {
			st = pc.Pump(20, wake_.get());
			Record r;
			while (st.ok() && pc.Next(&r, &st)) {
				heard = NowMs();
				if (r.op == Op::kHello) {
					hello = true;
					bool synced = uq_->Resume(r.arg);
					degraded = !synced;
					Record s;
					s.op = Op::kSyncState;
					s.arg = synced;
					pc.Send(s);
					Event("connected", std::string("passive holds seq ") +
								   std::to_string(r.arg) +
								   (synced ? ", synchronised" : ", NOT synchronised"));
				} else if (r.op == Op::kAck) {
					last_ack = r.arg;
					uq_->Acked(r.arg);
				}
			}
			if (!st.ok())
				break;
			if (hello && pc.unsent() < (1 << 20)) {
				std::string f;
				uq_->Take(&f, 1 << 20);
				pc.SendFrames(f);
			}
			if (NowMs() - sent_hb >= c_.heartbeat_interval_ms) {
				Record h;
				h.op = Op::kHeartbeat;
				h.arg = uq_->Stats().last_seq;
				pc.Send(h);
				sent_hb = NowMs();
			}
			if (NowMs() - heard > c_.timeout_ms) {
				st = Status::Error(ETIMEDOUT, "channel silent for " +
								      std::to_string(NowMs() - heard) + " ms");
				break;
			}
		}
		(void)last_ack;
		{
			std::lock_guard<std::mutex> g(mu_);
			channel_up_ = false;
		}
		if (!stop)
			Event("disconnected", st.msg());
	}
}

// The passive accepts the active's connection, stores its records in the
// safe queue, ACKs them, and fails over when the active is gone.
void Daemon::RunPassive(const std::atomic<bool> &stop)
{
	UniqueFd lfd;
	Status st = kvmft::ListenBound(c_.listen, {c_.listen_dev, c_.timeout_ms}, &lfd);
	if (!st.ok()) {
		Event("error", "channel listen: " + st.msg());
		return;
	}
	{
		std::lock_guard<std::mutex> g(mu_);
		last_heard_ms_ = NowMs();
	}
	while (!stop) {
		struct pollfd p = {lfd.get(), POLLIN, 0};
		poll(&p, 1, 50);
		UniqueFd fd;
		kvmft::SockAddr from;
		if (kvmft::AcceptConn(lfd.get(), {c_.listen_dev, c_.timeout_ms}, &fd, &from).ok()) {
			auto tls = std::make_unique<kvmft::TlsConn>(server_ctx_, std::move(fd));
			st = tls->Handshake({c_.peer_name, ""}, static_cast<int>(c_.connect_timeout_ms));
			if (st.ok()) {
				PeerConn pc(std::move(tls));
				ServePassive(&pc, stop);
			} else {
				Event("refused", from.str() + ": " + st.msg());
			}
		}
		bool synced;
		int64_t silent;
		{
			std::lock_guard<std::mutex> g(mu_);
			synced = passive_synced_;
			silent = NowMs() - last_heard_ms_;
		}
		if (synced && silent > c_.timeout_ms && TryFailover())
			return;
	}
}

void Daemon::ServePassive(PeerConn *pc, const std::atomic<bool> &stop)
{
	Record hello;
	hello.op = Op::kHello;
	{
		std::lock_guard<std::mutex> g(mu_);
		hello.arg = safe_last_;
		channel_up_ = true;
		passive_synced_ = false;
		last_heard_ms_ = NowMs();
	}
	pc->Send(hello);
	Status st;
	while (!stop && st.ok()) {
		st = pc->Pump(20, -1);
		std::string batch;
		uint64_t last;
		{
			std::lock_guard<std::mutex> g(mu_);
			last = safe_last_;
		}
		Record r;
		while (st.ok() && pc->Next(&r, &st)) {
			std::lock_guard<std::mutex> g(mu_);
			last_heard_ms_ = NowMs();
			if (r.op == Op::kSyncState) {
				passive_synced_ = r.arg == 1;
				Event("sync_state", passive_synced_ ? "synchronised" : "NOT synchronised");
			} else if (r.op == Op::kHeartbeat) {
				active_last_ = r.arg;
				Record h;
				h.op = Op::kHeartbeat;
				pc->Send(h);
			} else if (r.op >= Op::kWrite && r.op <= Op::kUpdateLast) {
				if (r.seq <= last)
					continue; // a resend of what is already safe
				if (r.seq != last + 1) {
					st = Status::Error(EPROTO, "record " + std::to_string(r.seq) +
									   " after " + std::to_string(last));
					break;
				}
				Encode(r, &batch);
				last = r.seq;
				active_last_ = std::max(active_last_, r.seq);
			}
		}
		if (!batch.empty()) {
			Status w = sq_.Append(batch);
			if (!w.ok()) {
				Event("error", w.msg());
				st = w;
				std::lock_guard<std::mutex> g(mu_);
				passive_synced_ = false;
				break;
			}
			std::lock_guard<std::mutex> g(mu_);
			safe_last_ = last;
			safe_bytes_ = sq_.bytes();
			Record a;
			a.op = Op::kAck;
			a.arg = last;
			pc->Send(a);
		}
		int64_t silent;
		{
			std::lock_guard<std::mutex> g(mu_);
			silent = NowMs() - last_heard_ms_;
		}
		if (st.ok() && silent > c_.timeout_ms)
			st = Status::Error(ETIMEDOUT, "channel silent for " + std::to_string(silent) + " ms");
	}
	std::lock_guard<std::mutex> g(mu_);
	channel_up_ = false;
	Event("disconnected", st.ok() ? "stopping" : st.msg());
}

bool Daemon::TryFailover()
{
	if (!PingAny(c_.ping, 500)) {
		SetState("passive, isolated");
		Event("isolated", "no ping target answers: not failing over");
		std::lock_guard<std::mutex> g(mu_);
		last_heard_ms_ = NowMs(); // look again after another timeout
		return false;
	}
	SetState("failing over");
	Event("failover", "active silent; waiting for the lock of " + c_.service);
	int64_t t0 = NowMs();
	Status st = lock_->Acquire(c_.service, int64_t{c_.acquire_timeout_ms} * kMsNs,
				   [this](const std::string &why) { OnLockLost(why); });
	if (!st.ok()) {
		std::lock_guard<std::mutex> g(mu_);
		passive_synced_ = false;
		state_ = "passive, not synchronised";
		Event("failover_refused", st.msg() + "; not synchronised from now on");
		return false;
	}
	uint64_t applied = 0;
	st = ApplySafeQueue(&applied);
	if (!st.ok()) {
		Event("error", "failover: " + st.msg());
		return false;
	}
	uq_->StartAfter(applied);
	st = BecomeActive();
	if (!st.ok()) {
		Event("error", "failover: " + st.msg());
		return false;
	}
	std::lock_guard<std::mutex> g(mu_);
	failovers_++;
	Event("failover_done", "active after " + std::to_string(NowMs() - t0) +
				       " ms waiting for the lock and applying");
	return true;
}

Status Daemon::ApplySafeQueue(uint64_t *applied_to)
{
	sq_.Close();
	ScanResult sr;
	Status st = Scan(c_.safe_queue, &sr);
	if (!st.ok())
		return st;
	size_t n = PlanApply(sr.records, 0);
	UniqueFd d(open(c_.data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!d.valid())
		return Status::Errno("open " + c_.data_dir);
	for (size_t i = 0; i < n; i++) {
		st = ApplyRecord(d.get(), sr.records[i]);
		if (!st.ok())
			return st;
	}
	if (syncfs(d.get()) < 0)
		return Status::Errno("syncfs " + c_.data_dir);
	*applied_to = n ? sr.records[n - 1].seq : 0;
	Event("applied", std::to_string(n) + " records applied (to seq " +
				 std::to_string(*applied_to) + "), " +
				 std::to_string(sr.records.size() - n) + " discarded" +
				 (sr.stop.empty() ? "" : "; queue ends with " + sr.stop));
	// The queue is spent: a later passive role starts a new one.
	if (truncate(c_.safe_queue.c_str(), 0) < 0)
		return Status::Errno("truncate " + c_.safe_queue);
	return Status::Ok();
}

nlohmann::json Daemon::Show()
{
	UnsafeStats u = uq_->Stats();
	std::lock_guard<std::mutex> g(mu_);
	nlohmann::json j = {{"service", c_.service},
			    {"server", c_.name},
			    {"peer", c_.peer_name},
			    {"role", role_ == Role::kActive ? "active" : "passive"},
			    {"state", state_},
			    {"mode", c_.mode == Mode::kSync ? "sync" : "async"},
			    {"channel", channel_up_ ? "up" : "down"},
			    {"public_address", c_.public_addr},
			    {"failovers", failovers_}};
	if (role_ == Role::kActive) {
		j["synchronised"] = u.synced;
		j["last_seq"] = u.last_seq;
		j["acked_seq"] = u.acked_seq;
		j["unsafe_records"] = u.queued;
		j["unsafe_bytes"] = u.queued_bytes;
		j["lag_records"] = u.last_seq - u.acked_seq;
	} else {
		j["synchronised"] = passive_synced_;
		j["safe_seq"] = safe_last_;
		j["safe_bytes"] = safe_bytes_;
		j["lag_records"] = active_last_ > safe_last_ ? active_last_ - safe_last_ : 0;
	}
	return j;
}

} // namespace kvmft::hbd
