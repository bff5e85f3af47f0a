// require_ok.h - for Catch2 tests: REQUIRE_OK(expr) fails, with the
// Status's message, when expr (a Status) is not ok.
#pragma once

#include <catch2/catch.hpp>

#include "base/status.h"

#define REQUIRE_OK(...)                                                  \
	do {                                                             \
		const ::kvmft::Status require_ok_s_ = (__VA_ARGS__);     \
		INFO(require_ok_s_.msg());                               \
		REQUIRE(require_ok_s_.ok());                             \
	} while (0)
