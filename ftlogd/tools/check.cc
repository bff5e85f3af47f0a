// ftlog-check - diagnostic consumer: plays the replaying VMM on the
// secondary host. Attaches to a secondary session's ring set over the
// control socket and reads DIAG records, checking that each is the next
// one (no loss, no duplicate, no reordering) and that its content is
// intact. --rate slows it down like a lagging secondary. Exits 0 only if
// exactly --count good records were read. Prints a JSON summary.
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "base/cpu_time.h"
#include "channel/unix_msg.h"
#include "diag.h"
#include "logd_client/request.h"
#include "ring/ring.h"

using kvmft::MonotonicNs;
using kvmft::Status;
using nlohmann::json;

namespace {

using kvmft::CpuSeconds;

struct Opts {
	std::string socket = "/run/ftlogd/ftlogd.sock", session;
	uint64_t count = 10000;
	double rate = 0, timeout = 30;
};

Status Attach(const Opts &o, kvmft::UniqueFd *ctl, kvmft::RingSet *rs)
{
	uint64_t deadline = MonotonicNs() + static_cast<uint64_t>(o.timeout * 1e9);
	Status st;
	for (;;) {
		st = kvmft::ConnectUnix(o.socket, ctl);
		json rep;
		std::vector<kvmft::UniqueFd> fds;
		if (st.ok())
			st = kvmft::logd::Request(ctl->get(), {{"cmd", "attach"}, {"session", o.session}},
					     {}, &rep, &fds);
		if (st.ok() && fds.size() == 2)
			return kvmft::RingSet::MapMemfd(fds[0].get(), fds[1].get(), rs);
		if (MonotonicNs() > deadline)
			return st.ok() ? Status::Error(EPROTO, "attach: no ring fds") : st;
		usleep(20000);
	}
}

int Run(const Opts &o)
{
	kvmft::UniqueFd ctl;
	kvmft::RingSet rs;
	Status st = Attach(o, &ctl, &rs);
	if (!st.ok()) {
		std::fprintf(stderr, "ftlog-check: %s\n", st.msg().c_str());
		return 1;
	}
	kvmft::RingConsumer c(rs.ring(0));
	uint64_t good = 0, bad = 0, t0 = MonotonicNs(), last = t0;
	std::string first_error;
	uint64_t deadline = t0 + static_cast<uint64_t>(o.timeout * 1e9);
	while (good + bad < o.count && MonotonicNs() < deadline) {
		size_t max = SIZE_MAX;
		if (o.rate > 0) {
			uint64_t allowed = static_cast<uint64_t>((MonotonicNs() - t0) / 1e9 * o.rate);
			max = allowed > good + bad ? allowed - good - bad : 0;
			if (!max) {
				usleep(1000);
				continue;
			}
		}
		size_t n = 0;
		st = c.Drain([&](const kvm_ft_rec_hdr &h) {
			Status s = kvmft::logd::CheckDiag(reinterpret_cast<const uint8_t *>(&h), h.len,
						     good + bad);
			if (s.ok()) {
				good++;
			} else {
				bad++;
				if (first_error.empty())
					first_error = s.msg();
			}
		}, &n, max);
		if (!st.ok()) {
			first_error = st.msg();
			break;
		}
		if (n)
			last = MonotonicNs();
		else
			rs.Wait(50);
	}
	json sum = {{"records", good}, {"bad", bad}, {"gaps", c.gaps()}, {"lost", c.lost()},
		    {"read_s", (last - t0) / 1e9}, {"cpu_s", CpuSeconds()}};
	if (!first_error.empty())
		sum["error"] = first_error;
	std::printf("%s\n", sum.dump().c_str());
	return good == o.count && bad == 0 && c.gaps() == 0 && c.lost() == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char **argv)
{
	Opts o;
	CLI::App app{"ftlog-check: FT log consumer that verifies DIAG records"};
	app.add_option("--socket", o.socket, "ftlogd control socket");
	app.add_option("--session", o.session, "session name")->required();
	app.add_option("--count", o.count, "records expected");
	app.add_option("--rate", o.rate, "records per second (0: as fast as possible)");
	app.add_option("--timeout", o.timeout, "seconds to wait in all");
	CLI11_PARSE(app, argc, argv);
	return Run(o);
}
