// The HTTP server against a real socket client.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <thread>

#include "api/http.h"
#include "core/metrics.h"

namespace herald::api {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.listen = {"127.0.0.1", 0};
    o.max_body_bytes = 1024;
    o.metrics = &metrics_;
    server_ = HttpServer::Start(o, [](HttpRequest& req, Respond respond) {
                // Answer from another thread, as handlers waiting on storage do.
                std::thread([body = req.method + " " + req.path + " " + req.query["q"] + " " +
                                    req.body,
                             respond] { respond(HttpResponse{200, "text/plain", body, {}}); })
                    .detach();
              }).value();
  }
  void TearDown() override { server_->Stop(); }

  // Sends raw bytes on one connection and returns everything read until close.
  std::string RoundTrip(const std::string& raw) {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->local_endpoint().port));
    asio::write(s, asio::buffer(raw));
    s.shutdown(tcp::socket::shutdown_send);
    std::string out;
    boost::system::error_code ec;
    char buf[4096];
    for (;;) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }

  MetricsRegistry metrics_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::string out = RoundTrip(
      "GET /a%20b?q=x%2By HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
      "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("GET /a b x+y "), std::string::npos) << out;
  EXPECT_NE(out.find("POST /p  hello"), std::string::npos) << out;
  EXPECT_NE(out.find("GET /last"), std::string::npos) << out;
}

TEST_F(HttpServerTest, OversizedBodyGets413JsonAndTheServerKeepsServing) {
  std::string body(5000, 'x');
  std::string out = RoundTrip("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" + body);
  EXPECT_NE(out.find("HTTP/1.1 413"), std::string::npos) << out;
  EXPECT_NE(out.find("\"code\":\"body_too_large\""), std::string::npos) << out;
  std::string again = RoundTrip("GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_NE(again.find("200 OK"), std::string::npos);
  EXPECT_EQ(metrics_.GetCounter("herald_http_protocol_errors_total", "").Value(), 1u);
}

TEST_F(HttpServerTest, GarbageGets400Json) {
  std::string out = RoundTrip("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_NE(out.find("HTTP/1.1 400"), std::string::npos) << out;
  EXPECT_NE(out.find("malformed_request"), std::string::npos) << out;
}

TEST_F(HttpServerTest, PortZeroReportsTheRealPort) {
  EXPECT_NE(server_->local_endpoint().port, 0);
  EXPECT_EQ(server_->local_endpoint().host, "127.0.0.1");
}

}  // namespace
}  // namespace herald::api
