// status.h - a cheap error value for kvm-ft userspace (no exceptions across
// layers). A Status is OK or carries an errno and a message with context
// ("open /dev/kvm_ft: No such file or directory").
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace kvmft {

class Status {
public:
	Status() = default;
	static Status Ok() { return Status(); }
	// Error with an errno value (positive) and a message.
	static Status Error(int err, std::string msg)
	{
		return Status(err ? err : EIO, std::move(msg));
	}
	// Error from errno: "what: strerror(errno)".
	static Status Errno(const std::string &what, int err = errno)
	{
		return Status(err ? err : EIO, what + ": " + std::strerror(err));
	}
	bool ok() const { return err_ == 0; }
	int err() const { return err_; }
	const std::string &msg() const { return msg_; }
	// Prefix the message with more context.
	Status &Wrap(const std::string &ctx)
	{
		if (!ok())
			msg_ = ctx + ": " + msg_;
		return *this;
	}

private:
	Status(int err, std::string msg) : err_(err), msg_(std::move(msg)) {}
	int err_ = 0;
	std::string msg_;
};

} // namespace kvmft
