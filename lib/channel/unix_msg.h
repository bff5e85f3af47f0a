// unix_msg.h - messages on a unix SOCK_SEQPACKET socket: one JSON object
// per packet, file descriptors passed with SCM_RIGHTS on the packet they
// belong to. This is the ftlogd control protocol's framing
// (Documentation/ftlogd.md, "Control socket"). Packet boundaries keep
// each message and its fds together; nothing is parsed across packets.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace kvmft {

constexpr size_t kMsgMaxLen = 64 * 1024; // bytes per message
constexpr size_t kMsgMaxFds = 8;
constexpr size_t kMsgMaxDepth = 32; // nested objects and arrays, the message itself is 1

// Sends one message (j.dump()) with fds.
Status SendMsg(int fd, const nlohmann::json &j, const std::vector<int> &fds = {});

// Parses one message: a JSON object of at most kMsgMaxLen bytes nested
// at most kMsgMaxDepth deep. The error says what is wrong; never throws.
Status ParseMsg(const char *p, size_t len, nlohmann::json *out);

// The same for JSON from elsewhere (a HELLO frame): an object of at most
// max_len bytes and kMsgMaxDepth levels; `what` names it in errors. Both
// limits are checked before the parser sees a byte: parsing, copying and
// printing a JSON value recurse once per level.
Status ParseJson(const char *p, size_t len, size_t max_len, const char *what,
		 nlohmann::json *out);

enum class MsgResult { kMsg, kAgain, kClosed, kError };

// Receives one message (kAgain on a non-blocking socket with none). A
// bad message is kError with *err set; the connection stays usable.
// Truncated messages and fd overflow are errors too (fds then closed).
MsgResult RecvMsg(int fd, nlohmann::json *msg, std::vector<UniqueFd> *fds, Status *err);

// Connects to a SOCK_SEQPACKET unix socket at path.
Status ConnectUnix(const std::string &path, UniqueFd *out);

} // namespace kvmft
