// module.cc - ftctl module: the kvm_ft kernel module, over generic netlink.
//
//   ftctl module show
//   ftctl module attach pid PID [ vcpus N ] [ ring-bytes BYTES ]
//   ftctl module detach id ID
//   ftctl module monitor [ count N ]
#include <linux/kvm_ft.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "ftctl.h"
#include "genl.h"
#include "print.h"

using kvmft::Status;

namespace kvmft::ctl {

namespace {

const char *const kFeatureNames[] = {
	"ring", "exit", "exit_reason", "pio", "mmio", "msr", "inj_virq", "entry", "attach_pid",
	"append",
};

std::string Features(uint64_t f)
{
	std::string s;
	for (size_t i = 0; i < std::size(kFeatureNames); i++)
		if (f & (1ull << i)) {
			if (!s.empty())
				s += ',';
			s += kFeatureNames[i];
		}
	return s;
}

uint32_t U32(const nlattr *a) { return a ? mnl_attr_get_u32(a) : 0; }
uint64_t U64(const nlattr *a) { return a ? mnl_attr_get_u64(a) : 0; }
uint8_t U8(const nlattr *a) { return a ? mnl_attr_get_u8(a) : 0; }

// One attachment: a line, then a line per ring (text); an object (JSON).
nlohmann::json PrintVm(const Options &o, const nlmsghdr *m)
{
	auto tb = ParseAttrs(m, KVM_FT_A_MAX);
	Record r(o);
	r.Num("id", "vm {} ", U32(tb[KVM_FT_A_VM_ID]))
		.Num("pid", "pid {} ", U32(tb[KVM_FT_A_PID]))
		.Bool("bound", "bound", U8(tb[KVM_FT_A_BOUND]))
		.Bool("persistent", "persistent", U8(tb[KVM_FT_A_PERSISTENT]))
		.Num("vcpus", "vcpus {} ", U32(tb[KVM_FT_A_NR_VCPUS]))
		.Num("ring_bytes", "ring-bytes {} ", U32(tb[KVM_FT_A_RING_BYTES]));
	std::string text = r.text();
	nlohmann::json rings = nlohmann::json::array();
	if (tb[KVM_FT_A_RINGS]) {
		for (const nlattr *ring : Children(tb[KVM_FT_A_RINGS])) {
			auto rt = ParseNested(ring, KVM_FT_A_RSTAT_MAX);
			Record rr(o);
			rr.Num("vcpu", "    vcpu {} ", U32(rt[KVM_FT_A_RSTAT_VCPU]))
				.Num("records", "records {} ", U64(rt[KVM_FT_A_RSTAT_RECORDS]))
				.Num("bytes", "bytes {} ", U64(rt[KVM_FT_A_RSTAT_BYTES]))
				.Num("lost", "lost {} ", U64(rt[KVM_FT_A_RSTAT_LOST]));
			rings.push_back(rr.json());
			text += '\n';
			text += rr.text();
		}
	}
	r.json()["rings"] = rings;
	if (!o.json)
		std::printf("%s\n", text.c_str());
	return r.json();
}

int Show(const Options &o)
{
	Genl nl;
	Status st = nl.Open(KVM_FT_GENL_NAME);
	if (st.err() == ENOENT) {
		Record r(o);
		r.Bool("loaded", "", false).Str("capture", "kvm_ft: not loaded\ncapture: {}", "userspace");
		r.Emit();
		return EXIT_OK;
	}
	if (!st.ok())
		return Fail(o, EXIT_ERROR, st.msg());
	Record info(o);
	st = nl.Run(nl.Begin(KVM_FT_CMD_GET_INFO, KVM_FT_GENL_VERSION), [&](const nlmsghdr *m) {
		auto tb = ParseAttrs(m, KVM_FT_A_MAX);
		info.Bool("loaded", "", true)
			.Num("abi", "kvm_ft: abi {} ", U32(tb[KVM_FT_A_VERSION]))
			.Str("features", "features {} ", Features(U64(tb[KVM_FT_A_FEATURES])))
			.Num("max_vcpus", "max-vcpus {}", U32(tb[KVM_FT_A_MAX_VCPUS]))
			.Str("capture", "\ncapture: {}", "kernel");
	});
	if (!st.ok())
		return Fail(o, EXIT_ERROR, "module info: " + st.msg());
	if (!o.json)
		std::printf("%s\n", info.text().c_str());
	nlohmann::json vms = nlohmann::json::array();
	st = nl.Run(nl.Begin(KVM_FT_CMD_LIST_VMS, KVM_FT_GENL_VERSION, true),
		    [&](const nlmsghdr *m) { vms.push_back(PrintVm(o, m)); });
	if (!st.ok())
		return Fail(o, EXIT_ERROR, "list VMs: " + st.msg());
	if (o.json) {
		info.json()["vms"] = vms;
		PrintJson(o, info.json());
	}
	return EXIT_OK;
}

bool ParseU32(const std::string &s, uint32_t *v)
{
	try {
		size_t pos;
		unsigned long x = std::stoul(s, &pos, 0);
		if (pos != s.size() || x > UINT32_MAX)
			return false;
		*v = static_cast<uint32_t>(x);
		return true;
	} catch (...) {
		return false;
	}
}

int Attach(const Options &o, const Args &a)
{
	uint32_t pid = 0, vcpus = 0, bytes = 0;
	for (size_t i = 0; i < a.size(); i += 2) {
		uint32_t *dst = Matches(a[i], "pid")          ? &pid
				: Matches(a[i], "vcpus")      ? &vcpus
				: Matches(a[i], "ring-bytes") ? &bytes
							      : nullptr;
		if (!dst)
			return Fail(o, EXIT_USAGE, "unknown argument \"" + a[i] + "\"");
		if (i + 1 >= a.size() || !ParseU32(a[i + 1], dst))
			return Fail(o, EXIT_USAGE, "\"" + a[i] + "\" needs a number");
	}
	if (!pid)
		return Fail(o, EXIT_USAGE, "attach needs \"pid PID\"");
	Genl nl;
	Status st = nl.Open(KVM_FT_GENL_NAME);
	if (!st.ok())
		return Fail(o, EXIT_UNAVAIL, "kvm_ft module: " + st.msg());
	nlmsghdr *h = nl.Begin(KVM_FT_CMD_ATTACH, KVM_FT_GENL_VERSION);
	mnl_attr_put_u32(h, KVM_FT_A_PID, pid);
	if (vcpus)
		mnl_attr_put_u32(h, KVM_FT_A_NR_VCPUS, vcpus);
	if (bytes)
		mnl_attr_put_u32(h, KVM_FT_A_RING_BYTES, bytes);
	nlohmann::json vm;
	st = nl.Run(h, [&](const nlmsghdr *m) { vm = PrintVm(o, m); });
	if (!st.ok())
		return Fail(o, EXIT_ERROR, "attach pid " + std::to_string(pid) + ": " + st.msg());
	if (o.json)
		PrintJson(o, vm);
	return EXIT_OK;
}

int Detach(const Options &o, const Args &a)
{
	uint32_t id = 0;
	if (a.size() != 2 || !Matches(a[0], "id") || !ParseU32(a[1], &id))
		return Fail(o, EXIT_USAGE, "usage: ftctl module detach id ID");
	Genl nl;
	Status st = nl.Open(KVM_FT_GENL_NAME);
	if (!st.ok())
		return Fail(o, EXIT_UNAVAIL, "kvm_ft module: " + st.msg());
	nlmsghdr *h = nl.Begin(KVM_FT_CMD_DETACH, KVM_FT_GENL_VERSION);
	mnl_attr_put_u32(h, KVM_FT_A_VM_ID, id);
	st = nl.Run(h, nullptr);
	if (!st.ok())
		return Fail(o, EXIT_ERROR, "detach " + std::to_string(id) + ": " + st.msg());
	return EXIT_OK;
}

volatile std::sig_atomic_t g_stop = 0;

int Monitor(const Options &o, const Args &a)
{
	uint32_t count = 0;
	if (!a.empty() && (a.size() != 2 || !Matches(a[0], "count") || !ParseU32(a[1], &count)))
		return Fail(o, EXIT_USAGE, "usage: ftctl module monitor [ count N ]");
	Genl nl;
	Status st = nl.Open(KVM_FT_GENL_NAME, KVM_FT_GENL_MCGRP);
	if (st.ok())
		st = nl.Subscribe();
	if (!st.ok())
		return Fail(o, EXIT_UNAVAIL, "kvm_ft module: " + st.msg());
	std::signal(SIGINT, [](int) { g_stop = 1; });
	std::signal(SIGTERM, [](int) { g_stop = 1; });
	static const char *const names[] = {"", "attach", "bind", "detach", "overflow"};
	uint32_t seen = 0;
	while (!g_stop && (!count || seen < count)) {
		bool got;
		st = nl.Receive(
			[&](const nlmsghdr *m) {
				auto tb = ParseAttrs(m, KVM_FT_A_MAX);
				uint32_t t = U32(tb[KVM_FT_A_EVENT_TYPE]);
				Record r(o);
				r.Str("event", "{} ", t < std::size(names) ? names[t] : "unknown")
					.Num("id", "vm {} ", U32(tb[KVM_FT_A_VM_ID]))
					.Num("pid", "pid {} ", U32(tb[KVM_FT_A_PID]));
				if (t == KVM_FT_EV_OVERFLOW)
					r.Num("vcpu", "vcpu {} ", U32(tb[KVM_FT_A_VCPU]))
						.Num("lost", "lost {} ", U64(tb[KVM_FT_A_LOST]));
				r.Emit();
				seen++;
			},
			200, &got);
		if (!st.ok())
			return Fail(o, EXIT_ERROR, st.msg());
	}
	return EXIT_OK;
}

void Usage(FILE *f)
{
	std::fprintf(f,
		     "Usage: ftctl module show\n"
		     "       ftctl module attach pid PID [ vcpus N ] [ ring-bytes BYTES ]\n"
		     "       ftctl module detach id ID\n"
		     "       ftctl module monitor [ count N ]\n");
}

} // namespace

int DoModule(const Options &o, const Args &args)
{
	if (args.empty() || Matches(args[0], "show"))
		return Show(o);
	Args rest(args.begin() + 1, args.end());
	if (Matches(args[0], "attach"))
		return Attach(o, rest);
	if (Matches(args[0], "detach"))
		return Detach(o, rest);
	if (Matches(args[0], "monitor"))
		return Monitor(o, rest);
	if (Matches(args[0], "help")) {
		Usage(stdout);
		return EXIT_OK;
	}
	Usage(stderr);
	return Fail(o, EXIT_USAGE, "unknown command \"" + args[0] + "\"");
}

} // namespace kvmft::ctl
