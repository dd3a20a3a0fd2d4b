// Inflating gzip request bodies (Content-Encoding: gzip), with a bound on the
// inflated size so a small bomb cannot exhaust memory.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace herald::api {

// Inflates a gzip (or zlib) stream. ResourceExhausted when the output would exceed
// `max_bytes`; InvalidArgument when the input is not a valid stream.
Result<std::string> Gunzip(std::string_view compressed, size_t max_bytes);

}  // namespace herald::api
