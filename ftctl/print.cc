// print.cc - see print.h.
#include "print.h"

#include <cstdio>

namespace kvmft::ctl {

std::string Record::text() const
{
	std::string t = text_;
	while (!t.empty() && t.back() == ' ')
		t.pop_back();
	return t;
}

void Record::Emit() const
{
	if (o_.json)
		PrintJson(o_, j_);
	else
		std::printf("%s\n", text().c_str());
	std::fflush(stdout);
}

} // namespace kvmft::ctl
