// The HTTP API's settings: [http].
#pragma once

#include <cstdint>

#include "core/config.h"

namespace herald::api {

struct HttpConfig {
  Endpoint listen{"127.0.0.1", 8080};
  unsigned threads = 1;
  std::uint64_t max_body_bytes = 16 << 20;
  std::uint64_t max_header_bytes = 16 << 10;
  unsigned idle_timeout_s = 60;
  unsigned max_connections = 4096;
};

config::Section<HttpConfig> HttpConfigSection();

}  // namespace herald::api
