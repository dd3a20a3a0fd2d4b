// Helpers shared by the stream module's tests.
#pragma once

#include <string>

#include "core/time_format.h"

namespace herald::stream::testing {

// "prefix<i>" (operator+ on a literal trips a false GCC 12 -Wrestrict warning).
inline std::string Numbered(std::string prefix, long i) {
  prefix += std::to_string(i);
  return prefix;
}

// An ISO-8601 time with a zone, as microseconds; the test's literal must be valid.
inline Micros At(const char* iso) { return ParseIsoTime(iso).value(); }

}  // namespace herald::stream::testing
