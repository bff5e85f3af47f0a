// print.h - one call per field serves both text and JSON output, as
// iproute2's print_uint(PRINT_ANY, "port", "port %u ", v) does.
//
//   Record r(opts);
//   r.Uint("port", "port {} ", 80);   // text: "port 80 ", JSON: "port": 80
//   r.Emit();                          // a line, or one JSON object
#pragma once

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "ftctl.h"

namespace kvmft::ctl {

class Record {
public:
	explicit Record(const Options &o) : o_(o) {}
	template <typename T> Record &Num(const char *key, const char *fmt, T v)
	{
		j_[key] = v;
		text_ += fmt::format(fmt::runtime(fmt), v);
		return *this;
	}
	// Hex in text, a number in JSON.
	Record &Hex(const char *key, const char *fmt, uint64_t v)
	{
		j_[key] = v;
		text_ += fmt::format(fmt::runtime(fmt), v);
		return *this;
	}
	Record &Str(const char *key, const char *fmt, const std::string &v)
	{
		j_[key] = v;
		text_ += fmt::format(fmt::runtime(fmt), v);
		return *this;
	}
	Record &Bool(const char *key, const char *word, bool v)
	{
		j_[key] = v;
		if (v)
			text_ += fmt::format("{} ", word);
		return *this;
	}
	Record &Text(const std::string &s) // text only
	{
		text_ += s;
		return *this;
	}
	nlohmann::json &json() { return j_; }
	std::string text() const;
	// Print: one line of text, or one compact JSON object per line.
	void Emit() const;

private:
	const Options &o_;
	nlohmann::json j_ = nlohmann::json::object();
	std::string text_;
};

} // namespace kvmft::ctl
