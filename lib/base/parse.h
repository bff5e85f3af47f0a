// parse.h - small helpers for "key = value" configuration files.
#pragma once

#include <cstdlib>
#include <string>

#include "base/status.h"

namespace kvmft {

// s without leading and trailing blanks (space, tab, CR).
inline std::string Trim(const std::string &s)
{
	size_t b = s.find_first_not_of(" \t\r");
	if (b == std::string::npos)
		return "";
	size_t e = s.find_last_not_of(" \t\r");
	return s.substr(b, e - b + 1);
}

// A decimal number in lo..hi; the error quotes v and the range.
inline Status ParseUint(const std::string &v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long n = std::strtoul(v.c_str(), &end, 10);
	if (v.empty() || *end || n < lo || n > hi)
		return Status::Error(EINVAL, "\"" + v + "\" is not a number in " +
						     std::to_string(lo) + ".." + std::to_string(hi));
	*out = static_cast<unsigned>(n);
	return Status::Ok();
}

} // namespace kvmft
