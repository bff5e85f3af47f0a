// udp_echo - host client of the netecho guest's UDP echo (port 7): sends
// --count datagrams one at a time, each waited for (--timeout-ms, resent
// up to --retries times), and checks every reply: 8 + size bytes, the
// guest's reply sequence number (u64 little-endian) then the datagram
// sent. Datagram i (0, 1, ...) is `size` bytes: i as a u64 little-endian
// client id, then a pattern that depends only on i (splitmix64 of i).
//
// A reply whose client id is not the one awaited (a late reply to an
// earlier datagram, or the second reply to a resent one) is a duplicate:
// counted and ignored. A reply to the awaited datagram that is not an
// exact echo is bad, and the datagram is not waited for any more (so
// sent = received + lost + those); a reply too short to hold a client id
// is bad too, and ignored. Accepted replies must carry strictly
// increasing sequence numbers (seq_errors otherwise); their RTT is from
// the last send of the datagram. With --interval-us, datagram i + 1 is
// first sent no sooner than that after datagram i was.
//
// Exit status: 0 if nothing was lost or bad and the sequence numbers
// increased, 1 otherwise, 2 on a usage or socket error.
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr size_t kIdBytes = 8, kSeqBytes = 8;
constexpr size_t kMaxUdp = 65507;	// IPv4 UDP payload

struct Opts {
	std::string to;
	uint16_t port = 7;
	uint64_t count = 100;
	size_t size = 64;
	uint64_t interval_us = 0;
	uint64_t timeout_ms = 1000;
	uint32_t retries = 0;
	uint16_t quit_port = 0;
	bool json = false;
};

struct Counts {
	uint64_t sent = 0, received = 0, lost = 0, retries = 0, duplicates = 0, bad = 0,
		 seq_errors = 0;
};

// Thrown for socket errors: exit status 2.
struct SocketError {
	std::string msg;
};

uint64_t NowNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

void SleepUntil(uint64_t ns)
{
	timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR)
		;
}

void PutLe64(uint8_t *p, uint64_t v)
{
	for (size_t k = 0; k < 8; k++)
		p[k] = static_cast<uint8_t>(v >> (8 * k));
}

uint64_t GetLe64(const uint8_t *p)
{
	uint64_t v = 0;
	for (size_t k = 0; k < 8; k++)
		v |= uint64_t{p[k]} << (8 * k);
	return v;
}

uint64_t SplitMix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

std::vector<uint8_t> Payload(uint64_t i, size_t size)
{
	std::vector<uint8_t> p(size);
	PutLe64(p.data(), i);
	uint64_t x = i, r = 0;
	for (size_t k = kIdBytes; k < size; k++) {
		if ((k - kIdBytes) % 8 == 0)
			r = SplitMix64(&x);
		p[k] = static_cast<uint8_t>(r >> (8 * ((k - kIdBytes) % 8)));
	}
	return p;
}

// Errors a datagram socket reports for the network or the peer (an ICMP
// error, no route, no ARP reply): the datagram is as good as lost.
bool Transient(int err)
{
	return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH ||
	       err == EHOSTDOWN || err == ENETDOWN || err == ENOBUFS || err == EAGAIN;
}

int Connect(const sockaddr_in &addr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		throw SocketError{fmt::format("socket: {}", strerror(errno))};
	if (connect(fd, reinterpret_cast<const sockaddr *>(&addr), sizeof(addr)) < 0) {
		int err = errno;
		close(fd);
		throw SocketError{fmt::format("connect: {}", strerror(err))};
	}
	return fd;
}

void Send(int fd, const std::vector<uint8_t> &p)
{
	if (send(fd, p.data(), p.size(), 0) < 0 && !Transient(errno))
		throw SocketError{fmt::format("send: {}", strerror(errno))};
}

// Nearest-rank percentile of sorted samples.
double Percentile(const std::vector<double> &s, double p)
{
	size_t rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(s.size())));
	return s[std::clamp<size_t>(rank, 1, s.size()) - 1];
}

class Client {
public:
	Client(const Opts &o, int fd) : o_(o), fd_(fd), buf_(kMaxUdp + 1) {}

	void Run()
	{
		uint64_t next = NowNs();
		for (uint64_t i = 0; i < o_.count; i++) {
			if (o_.interval_us) {
				SleepUntil(next);
				next = std::max(next + o_.interval_us * 1000, NowNs());
			}
			One(i);
		}
	}

	const Counts &counts() const { return c_; }
	const std::vector<double> &rtt_us() const { return rtt_us_; }

private:
	enum Reply { kNone, kAccepted, kBad };

	// Datagram i: send, wait, resend on timeout.
	void One(uint64_t i)
	{
		std::vector<uint8_t> p = Payload(i, o_.size);
		c_.sent++;
		for (uint32_t attempt = 0;; attempt++) {
			uint64_t sent_at = NowNs();
			Send(fd_, p);
			Reply r = Await(i, p, sent_at, sent_at + o_.timeout_ms * 1000000);
			if (r != kNone)
				return;
			if (attempt == o_.retries) {
				c_.lost++;
				return;
			}
			c_.retries++;
		}
	}

	// Reads replies until the one to datagram i or the deadline.
	Reply Await(uint64_t i, const std::vector<uint8_t> &p, uint64_t sent_at, uint64_t deadline)
	{
		for (;;) {
			uint64_t now = NowNs();
			if (now >= deadline)
				return kNone;
			// Round up: never spin on a sub-millisecond remainder.
			pollfd pfd{fd_, POLLIN, 0};
			int ms = static_cast<int>((deadline - now + 999999) / 1000000);
			int n = poll(&pfd, 1, ms);
			if (n < 0 && errno != EINTR)
				throw SocketError{fmt::format("poll: {}", strerror(errno))};
			if (n <= 0)
				continue;
			ssize_t len = recv(fd_, buf_.data(), buf_.size(), 0);
			uint64_t at = NowNs();
			if (len < 0) {
				if (Transient(errno) || errno == EINTR)
					continue;
				throw SocketError{fmt::format("recv: {}", strerror(errno))};
			}
			size_t got = static_cast<size_t>(len);
			if (got < kSeqBytes + kIdBytes) {
				c_.bad++;	// no client id: not a reply to anything
				continue;
			}
			if (GetLe64(buf_.data() + kSeqBytes) != i) {
				c_.duplicates++;
				continue;
			}
			if (got != kSeqBytes + p.size() ||
			    !std::equal(p.begin(), p.end(), buf_.begin() + kSeqBytes)) {
				c_.bad++;
				return kBad;
			}
			uint64_t seq = GetLe64(buf_.data());
			if (last_seq_ && seq <= *last_seq_)
				c_.seq_errors++;
			last_seq_ = seq;
			c_.received++;
			rtt_us_.push_back(static_cast<double>(at - sent_at) / 1000);
			return kAccepted;
		}
	}

	const Opts &o_;
	int fd_;
	std::vector<uint8_t> buf_;
	Counts c_;
	std::optional<uint64_t> last_seq_;
	std::vector<double> rtt_us_;
};

void Report(const Opts &o, const Counts &c, std::vector<double> rtt)
{
	std::sort(rtt.begin(), rtt.end());
	struct Stat {
		const char *name;
		double v;
	};
	std::vector<Stat> stats;
	if (!rtt.empty()) {
		double sum = 0;
		for (double v : rtt)
			sum += v;
		stats = {{"min", rtt.front()}, {"p50", Percentile(rtt, 50)},
			 {"p99", Percentile(rtt, 99)}, {"max", rtt.back()},
			 {"mean", sum / static_cast<double>(rtt.size())}};
	} else {
		for (const char *n : {"min", "p50", "p99", "max", "mean"})
			stats.push_back({n, NAN});
	}
	if (o.json) {
		nlohmann::json j = {{"sent", c.sent}, {"received", c.received}, {"lost", c.lost},
				    {"retries", c.retries}, {"duplicates", c.duplicates},
				    {"bad", c.bad}, {"seq_errors", c.seq_errors}};
		nlohmann::json r = nlohmann::json::object();
		for (const Stat &s : stats)
			r[s.name] = std::isnan(s.v) ? nlohmann::json(nullptr) : nlohmann::json(s.v);
		j["rtt_us"] = r;
		fmt::print("{}\n", j.dump());
		return;
	}
	std::string line = fmt::format("udp_echo: sent {} received {} lost {} retries {} "
				       "duplicates {} bad {} seq_errors {} rtt_us",
				       c.sent, c.received, c.lost, c.retries, c.duplicates, c.bad,
				       c.seq_errors);
	for (const Stat &s : stats)
		line += std::isnan(s.v) ? fmt::format(" {} -", s.name)
					: fmt::format(" {} {:.1f}", s.name, s.v);
	fmt::print("{}\n", line);
}

int Main(const Opts &o)
{
	sockaddr_in addr{};
	addr.sin_family = AF_INET;
	addr.sin_port = htons(o.port);
	if (inet_pton(AF_INET, o.to.c_str(), &addr.sin_addr) != 1) {
		fmt::print(stderr, "udp_echo: --to {}: not an IPv4 address\n", o.to);
		return 2;
	}
	try {
		int fd = Connect(addr);
		Client cl(o, fd);
		cl.Run();
		close(fd);
		if (o.quit_port) {
			addr.sin_port = htons(o.quit_port);
			int q = Connect(addr);
			Send(q, {'q', 'u', 'i', 't'});
			close(q);
		}
		const Counts &c = cl.counts();
		Report(o, c, cl.rtt_us());
		return c.lost == 0 && c.bad == 0 && c.seq_errors == 0 ? 0 : 1;
	} catch (const SocketError &e) {
		fmt::print(stderr, "udp_echo: {}\n", e.msg);
		return 2;
	}
}

} // namespace

int main(int argc, char **argv)
{
	Opts o;
	CLI::App app{"udp_echo: UDP echo client for the netecho guest (sequence-numbered replies)"};
	app.add_option("--to", o.to, "guest IPv4 address")->required();
	app.add_option("--port", o.port, "echo port")->capture_default_str();
	app.add_option("--count", o.count, "datagrams to send")->capture_default_str();
	app.add_option("--size", o.size, "datagram bytes (the first 8: its index)")
		->capture_default_str()
		->check(CLI::Range(kIdBytes, kMaxUdp - kSeqBytes));
	app.add_option("--interval-us", o.interval_us,
		       "least time between the first sends of two datagrams (0: none)")
		->capture_default_str();
	app.add_option("--timeout-ms", o.timeout_ms, "wait for a reply before resending")
		->capture_default_str()
		->check(CLI::Range(uint64_t{1}, uint64_t{3600000}));
	app.add_option("--retries", o.retries, "resends of a datagram before it is lost")
		->capture_default_str();
	app.add_option("--quit-port", o.quit_port, "afterwards send \"quit\" to this port (0: no)")
		->capture_default_str();
	app.add_flag("--json", o.json, "print the summary as JSON");
	try {
		app.parse(argc, argv);
	} catch (const CLI::ParseError &e) {
		int rc = app.exit(e);
		return rc == 0 ? 0 : 2;	// --help: 0
	}
	return Main(o);
}
