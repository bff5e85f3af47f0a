// events.cc - event stream: stderr/journal and an in-memory log.
#include "events.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace kvmft::logd {

namespace {

std::string IsoNow()
{
	timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	tm t;
	gmtime_r(&ts.tv_sec, &t);
	char buf[40];
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &t);
	snprintf(buf + n, sizeof(buf) - n, ".%06ldZ", ts.tv_nsec / 1000);
	return buf;
}

} // namespace

EventLog::EventLog(std::string host)
	: host_(std::move(host)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
}

void EventLog::Emit(const std::string &type, const std::string &session, const std::string &msg,
		    nlohmann::json extra)
{
	nlohmann::json e = std::move(extra);
	e["time"] = IsoNow();
	e["host"] = host_;
	e["type"] = type;
	if (!session.empty())
		e["session"] = session;
	e["msg"] = msg;
	{
		std::lock_guard<std::mutex> g(mu_);
		e["id"] = next_id_++;
		std::fprintf(stderr, "ftlogd[%s]: %s%s%s: %s\n", host_.c_str(), session.c_str(),
			     session.empty() ? "" : ": ", type.c_str(), msg.c_str());
		log_.push_back(std::move(e));
		if (log_.size() > kKeep)
			log_.pop_front();
	}
	uint64_t one = 1;
	ssize_t r = write(wake_.get(), &one, sizeof(one));
	(void)r;
}

std::vector<nlohmann::json> EventLog::Since(uint64_t after) const
{
	std::lock_guard<std::mutex> g(mu_);
	std::vector<nlohmann::json> out;
	for (const auto &e : log_)
		if (e["id"].get<uint64_t>() > after)
			out.push_back(e);
	return out;
}

uint64_t EventLog::last_id() const
{
	std::lock_guard<std::mutex> g(mu_);
	return next_id_ - 1;
}

} // namespace kvmft::logd
