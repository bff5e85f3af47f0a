// ftctl - the kvm-ft administration tool. See Documentation/man/ftctl.8.md.
#include "ftctl.h"

#include <cstdio>
#include <cstring>
#include <iostream>

namespace kvmft::ctl {

int Fail(const Options &o, int code, const std::string &msg)
{
	if (o.json)
		PrintJson(o, nlohmann::json{{"error", msg}});
	else
		std::fprintf(stderr, "Error: %s\n", msg.c_str());
	return code;
}

void PrintJson(const Options &o, const nlohmann::json &j)
{
	std::cout << j.dump(o.pretty ? 4 : -1) << std::endl;
}

bool Matches(const std::string &word, const char *full)
{
	return !word.empty() && std::strncmp(full, word.c_str(), word.size()) == 0;
}

} // namespace kvmft::ctl

using namespace kvmft::ctl;

namespace {

struct Object {
	const char *name;
	int (*fn)(const Options &, const Args &);
};

// Order matters for prefix matching: the first match wins.
const Object kObjects[] = {
	{"module", DoModule},
	{"trace", DoTrace},
	{"lock", DoLock},
	{"session", DoSession},
	{"monitor", DoMonitor},
	{"service", DoService},
};

void Usage(FILE *f)
{
	std::fprintf(f,
		     "Usage: ftctl [ OPTIONS ] OBJECT { COMMAND | help }\n"
		     "       ftctl -V\n"
		     "where  OBJECT := { module | trace | lock | session | monitor | service }\n"
		     "       OPTIONS := { -j[son] | -p[retty] | -s[tatistics] | -V[ersion] }\n");
}

} // namespace

int main(int argc, char **argv)
{
	Options o;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		std::string a = argv[i];
		if (a == "--")
			break;
		std::string w = a.substr(a[1] == '-' ? 2 : 1);
		if (Matches(w, "json"))
			o.json = true;
		else if (Matches(w, "pretty"))
			o.pretty = true;
		else if (Matches(w, "statistics"))
			o.stats++;
		else if (Matches(w, "Version")) {
			std::printf("ftctl %s\n", KVMFT_VERSION);
			return EXIT_OK;
		} else if (Matches(w, "help")) {
			Usage(stdout);
			return EXIT_OK;
		} else {
			Usage(stderr);
			return Fail(o, EXIT_USAGE, "unknown option \"" + a + "\"");
		}
	}
	if (i >= argc) {
		Usage(stderr);
		return EXIT_USAGE;
	}
	std::string obj = argv[i];
	if (obj == "help") {
		Usage(stdout);
		return EXIT_OK;
	}
	Args rest(argv + i + 1, argv + argc);
	for (const Object &ob : kObjects)
		if (Matches(obj, ob.name))
			return ob.fn(o, rest);
	return Fail(o, EXIT_USAGE, "Object \"" + obj + "\" is unknown, try \"ftctl help\".");
}
