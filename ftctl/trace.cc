// trace.cc - ftctl trace: stream the VM exits of a running process.
//
//   ftctl trace --pid PID [--count N] [--timeout S] [--vcpus N]
//               [--type TYPE[,TYPE...]]
//
// Attaches kvm_ft capture to the first KVM VM that runs in PID (QEMU,
// ftvmm, anything on /dev/kvm), prints one line (or JSON object) per
// event in ring order, and detaches on exit, Ctrl-C, or when the VM goes.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "base/unique_fd.h"
#include "ftctl.h"
#include "print.h"
#include "ring/ring.h"

using kvmft::RingConsumer;
using kvmft::RingSet;
using kvmft::Status;

namespace kvmft::ctl {

namespace {

volatile std::sig_atomic_t g_stop = 0;

const char *Dir(uint8_t d) { return d == KVM_FT_DIR_OUT ? "out" : "in"; }

// One record: common fields, then per type.
void PrintRecord(const Options &o, const kvm_ft_rec_hdr &h)
{
	Record r(o);
	auto common = [&](const char *type) {
		r.Str("type", "{} ", type)
			.Num("vcpu", "vcpu {} ", h.vcpu)
			.Num("seq", "seq {} ", h.seq)
			.Num("pos", "pos {} ", h.pos)
			.Num("ts_ns", "ts {} ", h.ts_ns);
	};
	switch (h.type) {
	case KVM_FT_REC_EXIT: {
		auto &e = reinterpret_cast<const kvm_ft_rec_exit &>(h);
		common("exit");
		r.Hex("reason", "reason {:#x} ", e.reason)
			.Str("isa", "isa {} ", e.isa == KVM_FT_ISA_SVM ? "svm" : "vmx")
			.Hex("rip", "rip {:#x} ", e.rip)
			.Hex("info1", "info1 {:#x} ", e.info1)
			.Hex("info2", "info2 {:#x} ", e.info2);
		break;
	}
	case KVM_FT_REC_ENTRY: {
		auto &e = reinterpret_cast<const kvm_ft_rec_entry &>(h);
		common("entry");
		r.Hex("rip", "rip {:#x} ", e.rip).Bool("immediate_exit", "immediate-exit", e.immediate_exit);
		break;
	}
	case KVM_FT_REC_PIO: {
		auto &p = reinterpret_cast<const kvm_ft_rec_pio &>(h);
		common("pio");
		r.Str("dir", "{} ", Dir(p.dir))
			.Hex("port", "port {:#x} ", p.port)
			.Num("size", "size {} ", p.size)
			.Num("count", "count {} ", p.count)
			.Hex("value", "value {:#x} ", p.value);
		break;
	}
	case KVM_FT_REC_MMIO: {
		auto &m = reinterpret_cast<const kvm_ft_rec_mmio &>(h);
		common("mmio");
		r.Str("dir", "{} ", Dir(m.dir))
			.Hex("gpa", "gpa {:#x} ", m.gpa)
			.Num("len", "len {} ", m.len)
			.Hex("value", "value {:#x} ", m.value);
		break;
	}
	case KVM_FT_REC_MSR: {
		auto &m = reinterpret_cast<const kvm_ft_rec_msr &>(h);
		common("msr");
		r.Str("dir", "{} ", m.dir == KVM_FT_DIR_OUT ? "write" : "read")
			.Hex("msr", "msr {:#x} ", m.index)
			.Hex("value", "value {:#x} ", m.value)
			.Bool("exception", "exception", m.exception);
		break;
	}
	case KVM_FT_REC_INJ_VIRQ: {
		auto &i = reinterpret_cast<const kvm_ft_rec_inj_virq &>(h);
		common("inj_virq");
		r.Hex("vector", "vector {:#x} ", i.vector)
			.Bool("soft", "soft", i.soft)
			.Bool("reinjected", "reinjected", i.reinjected);
		break;
	}
	case KVM_FT_REC_LOST: {
		auto &l = reinterpret_cast<const kvm_ft_rec_lost &>(h);
		common("lost");
		r.Num("count", "count {} ", l.count);
		break;
	}
	default:
		common("unknown");
		r.Num("record_type", "record-type {} ", h.type);
	}
	r.Emit();
}

struct TraceArgs {
	std::string session, socket; // --session: from ftlogd's secondary ring
	uint32_t pid = 0, vcpus = 8;
	uint64_t count = 0;
	double timeout = 0;
	uint32_t types = 0; // bit per record type shown; 0 = all
};

const char *TypeName(uint16_t t)
{
	switch (t) {
	case KVM_FT_REC_EXIT: return "exit";
	case KVM_FT_REC_ENTRY: return "entry";
	case KVM_FT_REC_PIO: return "pio";
	case KVM_FT_REC_MMIO: return "mmio";
	case KVM_FT_REC_MSR: return "msr";
	case KVM_FT_REC_INJ_VIRQ: return "inj_virq";
	case KVM_FT_REC_LOST: return "lost";
	default: return nullptr;
	}
}

// "pio,mmio" -> bit mask of record types; false on an unknown name.
bool ParseTypes(const std::string &list, uint32_t *mask)
{
	size_t start = 0;
	while (start <= list.size()) {
		size_t end = list.find(',', start);
		std::string w = list.substr(start, end == std::string::npos ? end : end - start);
		bool found = false;
		for (uint16_t t = 1; t < __KVM_FT_REC_CAPTURE_LAST; t++)
			if (TypeName(t) && w == TypeName(t)) {
				*mask |= 1u << t;
				found = true;
			}
		if (!found)
			return false;
		if (end == std::string::npos)
			break;
		start = end + 1;
	}
	*mask |= 1u << KVM_FT_REC_LOST; // losses are always shown
	return true;
}

int ParseArgs(const Options &o, const Args &a, TraceArgs *t)
{
	for (size_t i = 0; i < a.size(); i++) {
		std::string k = a[i];
		if (k == "help" || k == "--help")
			return -1;
		if (i + 1 >= a.size())
			return Fail(o, EXIT_USAGE, "\"" + k + "\" needs a value");
		std::string v = a[++i];
		try {
			size_t pos = 0;
			if (k == "--pid" || k == "pid")
				t->pid = static_cast<uint32_t>(std::stoul(v, &pos));
			else if (k == "--session" || k == "session")
				t->session = v, pos = v.size();
			else if (k == "--socket" || k == "socket")
				t->socket = v, pos = v.size();
			else if (k == "--count" || k == "count")
				t->count = std::stoull(v, &pos);
			else if (k == "--timeout" || k == "timeout")
				t->timeout = std::stod(v, &pos);
			else if (k == "--vcpus" || k == "vcpus")
				t->vcpus = static_cast<uint32_t>(std::stoul(v, &pos));
			else if (k == "--type" || k == "type") {
				if (!ParseTypes(v, &t->types))
					return Fail(o, EXIT_USAGE, "unknown record type in \"" + v +
									   "\" (exit, entry, pio, mmio, msr, inj_virq)");
				pos = v.size();
			}
			else
				return Fail(o, EXIT_USAGE, "unknown argument \"" + k + "\"");
			if (pos != v.size())
				throw std::invalid_argument(v);
		} catch (...) {
			return Fail(o, EXIT_USAGE, "bad value \"" + v + "\" for " + k);
		}
	}
	if (!t->pid == t->session.empty())
		return Fail(o, EXIT_USAGE, "trace needs one of --pid PID and --session NAME");
	if (!t->socket.empty() && t->session.empty())
		return Fail(o, EXIT_USAGE, "--socket goes with --session");
	return 0;
}

bool Hangup(int fd)
{
	pollfd p{fd, POLLIN, 0};
	return poll(&p, 1, 0) > 0 && (p.revents & POLLHUP);
}

} // namespace

int AttachPid(const Options &o, uint32_t pid, uint32_t vcpus, int *session)
{
	kvmft::UniqueFd dev(open(KVM_FT_DEVICE, O_RDWR | O_CLOEXEC));
	if (!dev.valid())
		return Fail(o, EXIT_UNAVAIL, Status::Errno(std::string("open ") + KVM_FT_DEVICE +
							   " (is kvm_ft.ko loaded?)").msg());
	kvm_ft_attach a{};
	a.vm_fd = -1;
	a.pid = pid;
	a.nr_vcpus = vcpus;
	*session = ioctl(dev.get(), KVM_FT_ATTACH, &a);
	if (*session < 0)
		return Fail(o, EXIT_ERROR, Status::Errno("attach to pid " + std::to_string(pid)).msg());
	return EXIT_OK;
}

int DoTrace(const Options &o, const Args &args)
{
	TraceArgs t;
	int r = ParseArgs(o, args, &t);
	if (r) {
		if (r < 0)
			std::printf("Usage: ftctl trace { --pid PID [--vcpus N] | --session NAME [--socket PATH] }\n"
				    "                   [--count N] [--timeout S]\n"
				    "                   [--type exit|entry|pio|mmio|msr|inj_virq[,...]]\n");
		return r < 0 ? EXIT_OK : r;
	}
	RingSet rings;
	kvmft::UniqueFd session;
	Status st;
	if (t.pid) {
		int fd = -1;
		if (int rc = AttachPid(o, t.pid, t.vcpus, &fd))
			return rc;
		session.reset(fd);
		st = RingSet::MapSession(session.get(), &rings);
	} else {
		// The log ftlogd stores for the secondary VMM of a session:
		// this process becomes its consumer. The session appears when
		// the primary first connects: wait for it up to --timeout.
		nlohmann::json rep;
		std::vector<int> fds;
		uint64_t give_up = kvmft::MonotonicNs() + static_cast<uint64_t>(t.timeout * 1e9);
		for (;;) {
			std::string why;
			int rc = AskFtlogd(o, t.socket.empty() ? DefaultSocket() : t.socket,
					   {{"cmd", "attach"}, {"session", t.session}}, {}, &rep, &fds,
					   &why);
			if (!rc)
				break;
			if (rc != EXIT_ERROR || kvmft::MonotonicNs() >= give_up || g_stop)
				return Fail(o, rc == EXIT_ERROR && t.timeout > 0 ? EXIT_TIMEOUT : rc, why);
			usleep(100000);
		}
		if (fds.size() != 2) {
			for (int fd : fds)
				close(fd);
			return Fail(o, EXIT_ERROR, "ftlogd sent no ring for session " + t.session);
		}
		st = RingSet::MapMemfd(fds[0], fds[1], &rings);
		close(fds[0]);
		close(fds[1]);
	}
	if (!st.ok())
		return Fail(o, EXIT_ERROR, st.msg());
	std::vector<RingConsumer> cons;
	for (uint32_t i = 0; i < rings.size(); i++)
		cons.emplace_back(rings.ring(i));

	struct sigaction sa{};
	sa.sa_handler = [](int) { g_stop = 1; };
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
	uint64_t seen = 0;
	uint64_t deadline = t.timeout > 0 ? kvmft::MonotonicNs() + static_cast<uint64_t>(t.timeout * 1e9) : 0;
	int code = EXIT_OK;
	while (!g_stop) {
		for (auto &c : cons) {
			size_t n;
			size_t max = t.count && !t.types ? t.count - seen : SIZE_MAX;
			uint64_t shown = 0;
			st = c.Drain(
				[&](const kvm_ft_rec_hdr &h) {
					if (t.types && (h.type >= 32 || !(t.types & (1u << h.type))))
						return;
					if (t.count && seen + shown >= t.count)
						return;
					PrintRecord(o, h);
					shown++;
				},
				&n, max);
			seen += t.types ? shown : n;
			if (!st.ok())
				return Fail(o, EXIT_ERROR, st.msg());
		}
		if (t.count && seen >= t.count)
			break;
		if (deadline && kvmft::MonotonicNs() >= deadline) {
			code = t.count ? EXIT_TIMEOUT : EXIT_OK;
			break;
		}
		if (!rings.Wait(100) && session.valid() && Hangup(session.get())) {
			std::fprintf(stderr, "ftctl trace: the VM is gone\n");
			break;
		}
	}
	return code;
}

} // namespace kvmft::ctl
