#include "api/http_config.h"

namespace herald::api {

config::Section<HttpConfig> HttpConfigSection() {
  using C = HttpConfig;
  config::Section<C> s("http", "The REST API, /metrics and the console.");
  s.Address("listen", &C::listen, false, "HOST:PORT; port 0 picks a free port (--http-listen).");
  s.Uint("threads", &C::threads, 1, 64, "Event-loop threads serving HTTP.");
  s.Uint("max_body_bytes", &C::max_body_bytes, 1024, 1ull << 30,
         "Largest request body accepted; larger requests get 413.");
  s.Uint("max_header_bytes", &C::max_header_bytes, 1024, 1 << 20,
         "Largest request head (request line + headers); larger get 431.");
  s.Uint("idle_timeout_s", &C::idle_timeout_s, 1, 86400,
         "A keep-alive connection idle this long is closed.");
  s.Uint("max_connections", &C::max_connections, 1, 1'000'000,
         "HTTP connections served at once; past it a new one gets 503 too_many_connections.");
  return s;
}

}  // namespace herald::api
