// HttpServer on Boost.Beast. This is the only file that includes Beast.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "api/http.h"
#include "core/log.h"
#include "core/descriptors.h"
#include "core/metrics.h"
#include "core/version.h"

namespace herald::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// After an error response that closes the connection, read and discard what the
// client is still sending (at most this much, for at most kDrainTime) so that it
// sees our response instead of a connection reset.
constexpr size_t kMaxDrainBytes = 64 << 20;
constexpr auto kDrainTime = std::chrono::seconds(2);

struct ServerState {
  HttpServerOptions options;
  Handler handler;
  Gauge* connections = nullptr;
  Counter* protocol_errors = nullptr;
  Counter* refused = nullptr;
  long descriptor_limit = 0;
};

// Said to a connection over the cap, before it is closed.
constexpr std::string_view kTooMany =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Connection: close\r\nRetry-After: 1\r\nContent-Length: 89\r\n\r\n"
    "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the server has too many connections\"}}";

void ParseQuery(std::string_view q, std::map<std::string, std::string>* out) {
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string k(pair.substr(0, eq));
    std::string v(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    for (auto* s : {&k, &v}) {
      for (char& c : *s) {
        if (c == '+') c = ' ';
      }
    }
    std::string dk, dv;
    if (PercentDecode(k, &dk) && PercentDecode(v, &dv)) (*out)[dk] = dv;
  }
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerState> state)
      : stream_(std::move(socket)), state_(std::move(state)) {
    state_->connections->Add(1);
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() { state_->connections->Add(-1); }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadRequest(); });
  }

 private:
  void ReadRequest() {
    parser_.emplace();
    parser_->body_limit(state_->options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(state_->options.max_header_bytes));
    stream_.expires_after(std::chrono::seconds(state_->options.idle_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Fail(413, "body_too_large",
                  "request body exceeds the limit of " +
                      std::to_string(state_->options.max_body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return Fail(431, "headers_too_large", "request head exceeds the limit of " +
                                                std::to_string(state_->options.max_header_bytes) +
                                                " bytes");
    }
    if (ec) {
      if (!parser_->got_some()) return Close();
      return Fail(400, "malformed_request", "malformed HTTP request: " + ec.message());
    }
    Dispatch(parser_->release());
  }

  void Dispatch(http::request<http::string_body> msg) {
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.remote = remote_;
    std::string_view target(msg.target().data(), msg.target().size());
    size_t qpos = target.find('?');
    if (!PercentDecode(target.substr(0, qpos), &req.path)) {
      return Fail(400, "malformed_request", "malformed percent-escape in the request path");
    }
    if (qpos != std::string_view::npos) ParseQuery(target.substr(qpos + 1), &req.query);
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    // Respond may run on any thread: hop back onto this connection's strand.
    auto self = shared_from_this();
    state_->handler(req, [self](HttpResponse resp) {
      asio::post(self->stream_.get_executor(),
                 [self, resp = std::move(resp)]() mutable { self->Write(std::move(resp), false); });
    });
  }

  void Write(HttpResponse resp, bool close_after) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(resp.status), version_ ? version_ : 11);
    res->set(http::field::server, "herald/" HERALD_VERSION);
    res->set(http::field::content_type, resp.content_type);
    for (const auto& [k, v] : resp.headers) res->set(k, v);
    res->body() = std::move(resp.body);
    res->keep_alive(keep_alive_ && !close_after);
    res->prepare_payload();
    bool keep = res->keep_alive();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep, close_after](beast::error_code ec,
                                                                          size_t) {
                        if (ec) return self->Close();
                        if (close_after) return self->Drain();
                        if (!keep) return self->Close();
                        self->ReadRequest();
                      });
  }

  // Answers a request that cannot be parsed, then closes the connection.
  void Fail(int status, std::string_view code, const std::string& message) {
    state_->protocol_errors->Inc();
    if (version_ == 0) version_ = 11;
    keep_alive_ = false;
    Write(ErrorResponse(status, code, message), true);
  }

  void Drain() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kDrainTime);
    drain_buf_.resize(64 << 10);
    DrainSome();
  }

  void DrainSome() {
    stream_.async_read_some(asio::buffer(drain_buf_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrainBytes) return self->Close();
                              self->DrainSome();
                            });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<ServerState> state_;
  std::string remote_;
  bool keep_alive_ = true;
  unsigned version_ = 0;
  std::vector<char> drain_buf_;
  size_t drained_ = 0;
};

class BeastServer final : public HttpServer {
 public:
  BeastServer(std::shared_ptr<ServerState> state)
      : state_(std::move(state)), ioc_(static_cast<int>(state_->options.threads)),
        acceptor_(asio::make_strand(ioc_)) {}
  ~BeastServer() override { Stop(); }

  Status Listen() {
    beast::error_code ec;
    auto addr = asio::ip::make_address(state_->options.listen.host, ec);
    if (ec) {
      // A host name: resolve it (only loopback names are expected here).
      tcp::resolver resolver(ioc_);
      auto results = resolver.resolve(state_->options.listen.host, "", ec);
      if (ec || results.empty()) {
        return Status::InvalidArgument("cannot resolve http listen host " +
                                       state_->options.listen.host);
      }
      addr = results.begin()->endpoint().address();
    }
    tcp::endpoint ep(addr, state_->options.listen.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::IoError("cannot listen for http on " + state_->options.listen.ToString() +
                             ": " + ec.message());
    }
    auto local = acceptor_.local_endpoint();
    local_ = {local.address().to_string(), local.port()};
    Accept();
    for (unsigned i = 0; i < state_->options.threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return Status::Ok();
  }

  Endpoint local_endpoint() const override { return local_; }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    // In-flight requests get a short grace period before the loops stop.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec && (state_->connections->Value() >= state_->options.max_connections ||
                  InDescriptorReserve(s.native_handle(), state_->options.descriptor_reserve,
                                      state_->descriptor_limit))) {
        state_->refused->Inc();
        beast::error_code wec;
        s.non_blocking(true, wec);
        asio::write(s, asio::buffer(kTooMany), wec);  // a fresh socket's buffer takes it
        s.close(wec);
      } else if (!ec) {
        s.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(s), state_)->Start();
      } else {
        // Out of file descriptors and the like: log, back off briefly, keep serving.
        log::Warn("http accept failed", {{"error", ec.message()}});
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      Accept();
    });
  }

  std::shared_ptr<ServerState> state_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  Endpoint local_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      Handler handler) {
  auto state = std::make_shared<ServerState>();
  state->options = options;
  if (state->options.threads == 0) state->options.threads = 1;
  state->handler = std::move(handler);
  static MetricsRegistry fallback;  // metrics nobody reads, when the caller passes none
  MetricsRegistry& m = options.metrics ? *options.metrics : fallback;
  state->connections = &m.GetGauge("herald_http_connections", "Open HTTP connections.");
  state->protocol_errors = &m.GetCounter(
      "herald_http_protocol_errors_total",
      "Requests rejected before routing (malformed, oversized body or head).");
  state->refused = &m.GetCounter(
      "herald_http_connections_refused_total",
      "Connections answered 503 too_many_connections: over http.max_connections, or into the "
      "descriptors kept for MQTT devices.");
  state->descriptor_limit = DescriptorLimit();
  auto server = std::make_unique<BeastServer>(state);
  HERALD_RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace herald::api
