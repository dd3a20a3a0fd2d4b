// MQTT over TLS (OpenSSL through Asio).
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "mqtt/transports.h"

namespace herald::mqtt {

namespace asio = boost::asio;

struct TlsContext {
  asio::ssl::context ctx{asio::ssl::context::tls_server};
};

Result<std::shared_ptr<TlsContext>> MakeTlsContext(const std::string& cert_file,
                                                   const std::string& key_file) {
  auto t = std::make_shared<TlsContext>();
  boost::system::error_code ec;
  t->ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1,
                     ec);
  t->ctx.use_certificate_chain_file(cert_file, ec);
  if (ec) return Status::InvalidArgument("mqtt.tls_cert " + cert_file + ": " + ec.message());
  t->ctx.use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument("mqtt.tls_key " + key_file + ": " + ec.message());
  return t;
}

namespace {

class TlsLink final : public LinkBase {
 public:
  TlsLink(Loop& loop, TlsContext& ctx, asio::ip::tcp::socket sock)
      : LinkBase(loop), stream_(std::move(sock), ctx.ctx), timer_(loop.ioc) {
    ++*loop_.browser_links;
  }
  ~TlsLink() override { --*loop_.browser_links; }

  void Start() {
    timer_.expires_after(std::chrono::seconds(10));
    timer_.async_wait([self = shared_from_this(), this](boost::system::error_code ec) {
      if (!ec && !opened_) Drop();
    });
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this(), this](boost::system::error_code ec) {
                              timer_.cancel();
                              if (ec || closed_) return Drop();
                              opened_ = true;
                              loop_.handler->OnOpen(this);
                              Read();
                            });
  }

  std::string Remote() const override {
    boost::system::error_code ec;
    auto ep = stream_.next_layer().remote_endpoint(ec);
    return ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

 private:
  void Read() {
    stream_.async_read_some(asio::buffer(buf_, sizeof buf_),
                            [self = shared_from_this(), this](boost::system::error_code ec, size_t n) {
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
    if (reading_) return;
    reading_ = true;
    Read();
  }

  void StartWrite() override {
    asio::async_write(stream_, asio::buffer(writing_),
                      [self = shared_from_this(), this](boost::system::error_code ec, size_t) {
                        OnWriteDone(!ec);
                      });
  }

  void CloseTransport() override {
    boost::system::error_code ec;
    stream_.next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    stream_.next_layer().close(ec);
  }

  void Drop() {
    if (opened_) return Finish();
    closed_ = true;
    CloseTransport();
  }

  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  asio::steady_timer timer_;
  bool opened_ = false;
  bool reading_ = true;  // a read is outstanding (false while input is paused)
  char buf_[8192];
};

}  // namespace

void StartTlsLink(Loop& loop, TlsContext& ctx, asio::ip::tcp::socket sock) {
  std::make_shared<TlsLink>(loop, ctx, std::move(sock))->Start();
}

}  // namespace herald::mqtt
