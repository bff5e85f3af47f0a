// ftctl.h - what every ftctl object shares: options, output, errors.
//
// Grammar: ftctl [OPTIONS] OBJECT { COMMAND | help } [ARGS]
// Each OBJECT lives in its own file and exposes one entry point,
// registered in main.cc's object table.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace kvmft::ctl {

struct Options {
	bool json = false;   // -j: JSON output
	bool pretty = false; // -p: indent JSON
	int stats = 0;       // -s: more detail (repeatable)
};

// Exit codes (documented in ftctl(8)).
enum Exit {
	EXIT_OK = 0,
	EXIT_ERROR = 1,     // the operation failed
	EXIT_USAGE = 2,     // bad command line
	EXIT_TIMEOUT = 3,   // a --timeout ran out
	EXIT_LOST = 4,      // a held resource was lost
	EXIT_UNAVAIL = 5,   // a needed component (module, daemon) is absent
};

using Args = std::vector<std::string>;

// Report an error as "Error: MSG" on stderr, or {"error": MSG} on stdout
// in JSON mode. Returns code, so `return Fail(o, EXIT_ERROR, ...)` works.
int Fail(const Options &o, int code, const std::string &msg);

// Print one JSON document (object or array) per the -p option.
void PrintJson(const Options &o, const nlohmann::json &j);

// True if `word` is a non-empty prefix of `full` (iproute2 matches()).
bool Matches(const std::string &word, const char *full);

// Capture the first KVM VM of process pid with kvm_ft.ko (up to vcpus
// rings): *session is the kvm_ft session fd. Reports and returns an exit
// code on failure, EXIT_OK on success.
int AttachPid(const Options &o, uint32_t pid, uint32_t vcpus, int *session);
// One request to ftlogd's control socket with fds; *rep is the reply and
// *rfds the fds it carried. Returns an exit code on failure, reported
// unless *why is given (then it gets the message).
int AskFtlogd(const Options &o, const std::string &sock, const nlohmann::json &req,
	      const std::vector<int> &fds, nlohmann::json *rep,
	      std::vector<int> *rfds = nullptr, std::string *why = nullptr);
// The control socket: $FTLOGD_SOCKET or /run/ftlogd/ftlogd.sock.
std::string DefaultSocket();

// Object entry points. args excludes the object word.
int DoModule(const Options &o, const Args &args);
int DoTrace(const Options &o, const Args &args);
int DoLock(const Options &o, const Args &args);
int DoSession(const Options &o, const Args &args);
int DoMonitor(const Options &o, const Args &args);
int DoService(const Options &o, const Args &args);

} // namespace kvmft::ctl
