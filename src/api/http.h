// The HTTP/1.1 server: requests and responses as plain structs, so that handlers
// never see Boost.Beast (which stays inside http_server.cc).
//
// The server runs its own Asio event loops (HttpServerOptions::threads). Each
// request is handed to the Handler on a loop thread; the handler answers by
// calling Respond exactly once, from any thread, now or later (for example after a
// group commit). Connections are keep-alive; a connection reads its next request
// only after the previous response is written.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/status.h"

namespace herald {
class MetricsRegistry;
}

namespace herald::api {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // percent-decoded path, without the query
  std::map<std::string, std::string> query;  // decoded query parameters
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote;  // peer address, "ip:port"

  // Filled in by the Router.
  std::map<std::string, std::string> params;  // path parameters ("{id}")
  std::string route;                          // matched pattern, e.g. "/v1/users/{id}"
  std::string tenant_id;                      // authenticated tenant
  bool is_admin = false;

  // The first header with this lower-case name, or "" when absent.
  std::string_view Header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends the response. Call exactly once, from any thread.
using Respond = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest&, Respond)>;

// JSON error body: {"error":{"code":code,"message":message}}.
HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message);
// Maps a Status to its HTTP status and snake_case code.
HttpResponse ErrorResponse(const Status& status);
int HttpStatusFor(Code code);

struct HttpServerOptions {
  Endpoint listen;
  unsigned threads = 1;
  std::uint64_t max_body_bytes = 16 << 20;
  std::uint64_t max_header_bytes = 16 << 10;
  unsigned idle_timeout_s = 60;
  MetricsRegistry* metrics = nullptr;  // may be null
  // Connections served at once; past it a new one gets 503 too_many_connections.
  unsigned max_connections = 4096;
  // Descriptors left for MQTT devices: a connection that would leave fewer free
  // is refused the same way.
  unsigned descriptor_reserve = 0;
};

class HttpServer {
 public:
  // Binds, listens and starts serving. Fails (InvalidArgument / IoError) when the
  // address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   Handler handler);
  virtual ~HttpServer() = default;
  // The bound address, with the real port when port 0 was asked for.
  virtual Endpoint local_endpoint() const = 0;
  // Stops accepting, gives in-flight requests a moment to finish, closes every
  // connection and joins the loop threads. Idempotent.
  virtual void Stop() = 0;
};

// Percent-decodes `s` ("+" stays "+"; use DecodeQueryComponent for forms).
// Returns false on a malformed escape.
bool PercentDecode(std::string_view s, std::string* out);

}  // namespace herald::api
