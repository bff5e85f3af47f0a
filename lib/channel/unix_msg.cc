// unix_msg.cc - JSON messages with SCM_RIGHTS on unix seqpacket sockets.
#include "channel/unix_msg.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>

namespace kvmft {

Status SendMsg(int fd, const nlohmann::json &j, const std::vector<int> &fds)
{
	if (fds.size() > kMsgMaxFds)
		return Status::Error(EINVAL, "too many fds for one message");
	std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
	if (s.size() > kMsgMaxLen)
		return Status::Error(EMSGSIZE, "control message too long");
	iovec iov{s.data(), s.size()};
	msghdr m{};
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMsgMaxFds)];
	if (!fds.empty()) {
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
		cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
		std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
	}
	for (;;) {
		if (sendmsg(fd, &m, MSG_NOSIGNAL) >= 0)
			return Status::Ok();
		if (errno != EINTR)
			return Status::Errno("send control message");
	}
}

namespace {

// The deepest nesting of objects and arrays in p, outside strings. Bytes
// that are not JSON do not matter: the parser refuses them afterwards.
size_t JsonDepth(const char *p, size_t len)
{
	size_t depth = 0, most = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			most = std::max(most, ++depth);
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		}
	}
	return most;
}

} // namespace

Status ParseJson(const char *p, size_t len, size_t max_len, const char *what,
		 nlohmann::json *out)
{
	if (len > max_len)
		return Status::Error(EMSGSIZE, std::string(what) + " longer than " +
						       std::to_string(max_len) + " bytes");
	if (JsonDepth(p, len) > kMsgMaxDepth)
		return Status::Error(EBADMSG, std::string(what) + " nested deeper than " +
						      std::to_string(kMsgMaxDepth) + " levels");
	nlohmann::json j = nlohmann::json::parse(p, p + len, nullptr, false);
	if (j.is_discarded())
		return Status::Error(EBADMSG, std::string(what) + " is not valid JSON");
	if (!j.is_object())
		return Status::Error(EBADMSG, std::string(what) + " is not a JSON object");
	*out = std::move(j);
	return Status::Ok();
}

Status ParseMsg(const char *p, size_t len, nlohmann::json *out)
{
	return ParseJson(p, len, kMsgMaxLen, "message", out);
}

MsgResult RecvMsg(int fd, nlohmann::json *msg, std::vector<UniqueFd> *fds, Status *err)
{
	static thread_local std::vector<char> data(kMsgMaxLen + 1);
	iovec iov{data.data(), data.size()};
	alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMsgMaxFds)];
	msghdr m{};
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof(cbuf);
	fds->clear();
	ssize_t n;
	do
		n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN)
			return MsgResult::kAgain;
		*err = Status::Errno("read control socket");
		return MsgResult::kError;
	}
	for (cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			fds->push_back(UniqueFd(f));
		}
	}
	if (n == 0 && fds->empty())
		return MsgResult::kClosed;
	if (m.msg_flags & MSG_CTRUNC) {
		fds->clear();
		*err = Status::Error(EMSGSIZE, "more than " + std::to_string(kMsgMaxFds) +
						       " fds in one message");
		return MsgResult::kError;
	}
	if (m.msg_flags & MSG_TRUNC) {
		fds->clear();
		*err = Status::Error(EMSGSIZE, "message longer than " +
						       std::to_string(kMsgMaxLen) + " bytes");
		return MsgResult::kError;
	}
	*err = ParseMsg(data.data(), static_cast<size_t>(n), msg);
	if (!err->ok()) {
		fds->clear();
		return MsgResult::kError;
	}
	return MsgResult::kMsg;
}

Status ConnectUnix(const std::string &path, UniqueFd *out)
{
	sockaddr_un a{};
	a.sun_family = AF_UNIX;
	if (path.size() >= sizeof(a.sun_path))
		return Status::Error(ENAMETOOLONG, "socket path too long: " + path);
	std::memcpy(a.sun_path, path.c_str(), path.size());
	UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
	if (!fd.valid())
		return Status::Errno("socket");
	if (connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a)) < 0)
		return Status::Errno("connect " + path);
	*out = std::move(fd);
	return Status::Ok();
}

} // namespace kvmft
