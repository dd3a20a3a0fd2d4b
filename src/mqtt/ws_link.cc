// MQTT over WebSocket (Boost.Beast).
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "mqtt/transports.h"

namespace herald::mqtt {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

class WsLink final : public LinkBase {
 public:
  WsLink(Loop& loop, asio::ip::tcp::socket sock) : LinkBase(loop), ws_(std::move(sock)) {
    ++*loop_.browser_links;
  }
  ~WsLink() override { --*loop_.browser_links; }

  void Start() {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
    http::async_read(beast::get_lowest_layer(ws_), hs_buffer_, upgrade_,
                     [self = shared_from_this(), this](beast::error_code ec, size_t) {
                       if (ec || !websocket::is_upgrade(upgrade_)) return Drop();
                       Accept();
                     });
  }

  std::string Remote() const override {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
    return ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

 private:
  void Accept() {
    bool offers_mqtt = false;
    std::string_view protocols(upgrade_[http::field::sec_websocket_protocol].data(),
                               upgrade_[http::field::sec_websocket_protocol].size());
    offers_mqtt = protocols.find("mqtt") != std::string_view::npos;
    ws_.set_option(websocket::stream_base::decorator([offers_mqtt](websocket::response_type& r) {
      if (offers_mqtt) r.set(http::field::sec_websocket_protocol, "mqtt");
    }));
    ws_.binary(true);
    ws_.async_accept(upgrade_, [self = shared_from_this(), this](beast::error_code ec) {
      if (ec) return Drop();
      beast::get_lowest_layer(ws_).expires_never();
      loop_.handler->OnOpen(this);
      opened_ = true;
      Read();
    });
  }

  void Read() {
    ws_.async_read_some(asio::buffer(buf_, sizeof buf_),
                        [self = shared_from_this(), this](beast::error_code ec, size_t n) {
                          if (ec || closed_) return Finish();
                          if (!Consume(std::string_view(buf_, n))) return;
                          if (input_paused_) {
                            reading_ = false;  // ResumeReading() starts again
                            return;
                          }
                          Read();
                        });
  }
  void ResumeReading() override {
    if (reading_ || !opened_) return;
    reading_ = true;
    Read();
  }

  void StartWrite() override {
    ws_.async_write(asio::buffer(writing_),
                    [self = shared_from_this(), this](beast::error_code ec, size_t) {
                      OnWriteDone(!ec);
                    });
  }

  void CloseTransport() override {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  // Before the handshake completes the broker has not seen the link.
  void Drop() {
    if (opened_) return Finish();
    closed_ = true;
    CloseTransport();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer hs_buffer_;
  http::request<http::empty_body> upgrade_;
  bool opened_ = false;
  bool reading_ = true;  // a read is outstanding (false while input is paused)
  char buf_[8192];
};

}  // namespace

void StartWebSocketLink(Loop& loop, asio::ip::tcp::socket sock) {
  std::make_shared<WsLink>(loop, std::move(sock))->Start();
}

}  // namespace herald::mqtt
