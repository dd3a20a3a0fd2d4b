#include "bench_connection.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <variant>

#include "mqtt/codec.h"

namespace herald::bench {
namespace {

std::string Errno(std::string_view what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

std::string Endpoint(const sockaddr_in& a) {
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
  return std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
}

std::string_view ConnackText(mqtt::ConnackCode code) {
  switch (code) {
    case mqtt::ConnackCode::kAccepted:
      return "accepted";
    case mqtt::ConnackCode::kUnacceptableProtocolVersion:
      return "unacceptable protocol version";
    case mqtt::ConnackCode::kIdentifierRejected:
      return "identifier rejected";
    case mqtt::ConnackCode::kServerUnavailable:
      return "server unavailable";
    case mqtt::ConnackCode::kBadUsernameOrPassword:
      return "bad user name or password";
    case mqtt::ConnackCode::kNotAuthorized:
      return "not authorized";
  }
  return "reserved code";
}

}  // namespace

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::Start(int epoll_fd, const sockaddr_in& server, const sockaddr_in& source,
                       const mqtt::Connect& connect, int64_t now_ns) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    Close(Errno("socket", errno));
    return false;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (source.sin_addr.s_addr != htonl(INADDR_ANY)) {
    // Defer the port choice to connect(), so each source address has its own
    // ephemeral port range per destination: that is what lifts the ~28k limit.
    setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&source), sizeof(source)) != 0) {
      Close(Errno("bind " + Endpoint(source), errno));
      return false;
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u32 = index_;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd_, &ev) != 0) {
    Close(Errno("epoll_ctl", errno));
    return false;
  }
  mqtt::Encode(connect, &out_);
  state_ = State::kConnecting;
  last_send_ns_ = now_ns;
  int rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&server), sizeof(server));
  if (rc != 0 && errno != EINPROGRESS) {
    Close(Errno("connect to " + Endpoint(server), errno));
    return false;
  }
  if (rc == 0) OnConnected(now_ns);
  return true;
}

void Connection::OnConnected(int64_t now_ns) {
  state_ = State::kAwaitConnack;
  writable_ = true;
  last_send_ns_ = now_ns;
  Queued();
}

void Connection::OnEvents(uint32_t events, std::string* scratch, int64_t now_ns) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Close(Errno("connect", err));
    if (!(events & (EPOLLOUT | EPOLLIN))) return;
    OnConnected(now_ns);
  } else if (events & EPOLLOUT) {
    writable_ = true;
    if (buffered() > 0) Queued();
  }
  constexpr uint32_t kHangup = EPOLLRDHUP | EPOLLHUP | EPOLLERR;
  if (events & (EPOLLIN | kHangup)) ReadAll(scratch, (events & kHangup) != 0, now_ns);
}

void Connection::ReadAll(std::string* scratch, bool hangup, int64_t now_ns) {
  while (state_ != State::kClosed) {
    ssize_t n = ::read(fd_, scratch->data(), scratch->size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      return Close(Errno("read", errno));
    }
    if (n == 0) {
      return Close(state_ == State::kAwaitConnack ? "broker closed the connection before CONNACK"
                                                  : "broker closed the connection");
    }
    std::string_view fresh(scratch->data(), static_cast<size_t>(n));
    if (in_.empty()) {
      // The common case: decode straight from the scratch buffer, keep only a tail.
      size_t used = DecodeAll(fresh, now_ns);
      if (used == std::string::npos) return;
      in_.assign(fresh.substr(used));
    } else {
      in_.append(fresh);
      size_t used = DecodeAll(in_, now_ns);
      if (used == std::string::npos) return;
      in_.erase(0, used);
    }
    // A short read drained the socket, and new data re-arms the edge; after a hangup
    // there is no further edge, so read on until the end of the stream.
    if (static_cast<size_t>(n) < scratch->size() && !hangup) return;
  }
}

size_t Connection::DecodeAll(std::string_view input, int64_t now_ns) {
  size_t used = 0;
  while (used < input.size()) {
    mqtt::DecodeResult r = mqtt::Decode(input.substr(used));
    if (r.outcome == mqtt::DecodeOutcome::kNeedMore) break;
    if (r.outcome == mqtt::DecodeOutcome::kError) {
      Close("malformed packet from broker: " + std::string(r.error.reason));
      return std::string::npos;
    }
    used += r.consumed;
    HandlePacket(r.packet, now_ns);
    if (state_ == State::kClosed) return std::string::npos;
  }
  return used;
}

void Connection::HandlePacket(mqtt::Packet& packet, int64_t now_ns) {
  if (state_ == State::kAwaitConnack) {
    auto* ack = std::get_if<mqtt::Connack>(&packet);
    if (ack == nullptr) {
      return Close("expected CONNACK, got " +
                   std::string(mqtt::PacketTypeName(mqtt::TypeOf(packet))));
    }
    if (ack->code != mqtt::ConnackCode::kAccepted) {
      return Close("CONNACK refused: 0x0" + std::to_string(static_cast<int>(ack->code)) + " " +
                   std::string(ConnackText(ack->code)));
    }
    state_ = State::kOpen;
    return sink_->OnConnack(*this, now_ns);
  }
  if (auto* p = std::get_if<mqtt::Publish>(&packet)) return HandleDelivery(*p, now_ns);
  if (auto* a = std::get_if<mqtt::Puback>(&packet)) {
    return CompletePublish(a->packet_id, kAwaitPuback, "PUBACK");
  }
  if (auto* r = std::get_if<mqtt::Pubrec>(&packet)) {
    if (id_state_.empty() || id_state_[r->packet_id] != kAwaitPubrec) {
      return Close("PUBREC for unknown packet id " + std::to_string(r->packet_id));
    }
    id_state_[r->packet_id] = kAwaitPubcomp;
    mqtt::Encode(mqtt::Pubrel{r->packet_id}, &out_);
    return Queued();
  }
  if (auto* c = std::get_if<mqtt::Pubcomp>(&packet)) {
    return CompletePublish(c->packet_id, kAwaitPubcomp, "PUBCOMP");
  }
  if (auto* rel = std::get_if<mqtt::Pubrel>(&packet)) {
    mqtt::Encode(mqtt::Pubcomp{rel->packet_id}, &out_);
    return Queued();
  }
  if (auto* s = std::get_if<mqtt::Suback>(&packet)) return sink_->OnSuback(*this, *s, now_ns);
  if (std::holds_alternative<mqtt::Pingresp>(packet) ||
      std::holds_alternative<mqtt::Unsuback>(packet)) {
    return;
  }
  Close("unexpected " + std::string(mqtt::PacketTypeName(mqtt::TypeOf(packet))) + " from broker");
}

void Connection::HandleDelivery(const mqtt::Publish& p, int64_t now_ns) {
  sink_->OnMessage(*this, p, now_ns);
  if (state_ == State::kClosed) return;
  // QoS 2 uses method B of the standard (figure 4.3): the message was counted on
  // PUBLISH; a redelivery is recognised by its sequence number, not by keeping ids.
  if (p.qos == mqtt::QoS::kAtLeastOnce) {
    mqtt::Encode(mqtt::Puback{p.packet_id}, &out_);
    Queued();
  } else if (p.qos == mqtt::QoS::kExactlyOnce) {
    mqtt::Encode(mqtt::Pubrec{p.packet_id}, &out_);
    Queued();
  }
}

void Connection::CompletePublish(uint16_t packet_id, uint8_t expected_state,
                                 std::string_view what) {
  if (id_state_.empty() || id_state_[packet_id] != expected_state) {
    return Close(std::string(what) + " for unknown packet id " + std::to_string(packet_id));
  }
  id_state_[packet_id] = kIdFree;
  --inflight_;
  sink_->OnPublishDone(*this);
}

bool Connection::CanPublish(uint32_t window, size_t max_buffered) const {
  return state_ == State::kOpen && inflight_ < window && buffered() < max_buffered;
}

void Connection::Publish(std::string_view topic, std::string_view payload, mqtt::QoS qos) {
  mqtt::Publish p;
  p.qos = qos;
  p.topic = topic;
  p.payload = payload;
  if (qos != mqtt::QoS::kAtMostOnce) {
    if (id_state_.empty()) id_state_.assign(65536, kIdFree);
    // Skip ids still in flight; CanPublish keeps the window below 65535, so one exists.
    while (next_id_ == 0 || id_state_[next_id_] != kIdFree) ++next_id_;
    p.packet_id = next_id_++;
    id_state_[p.packet_id] = qos == mqtt::QoS::kAtLeastOnce ? kAwaitPuback : kAwaitPubrec;
    ++inflight_;
  }
  mqtt::Encode(p, &out_);
  Queued();
}

void Connection::Subscribe(std::string filter, mqtt::QoS qos) {
  mqtt::Subscribe s;
  s.packet_id = 1;
  s.subscriptions.push_back({std::move(filter), qos});
  mqtt::Encode(s, &out_);
  Queued();
}

void Connection::Ping() {
  mqtt::Encode(mqtt::Pingreq{}, &out_);
  Queued();
}

void Connection::Disconnect() {
  if (state_ != State::kOpen) return;
  mqtt::Encode(mqtt::Disconnect{}, &out_);
  Queued();
}

void Connection::Queued() {
  if (dirty_ || state_ == State::kClosed) return;
  dirty_ = true;
  sink_->MarkDirty(*this);
}

void Connection::Flush(int64_t now_ns) {
  dirty_ = false;
  if (state_ == State::kClosed || state_ == State::kConnecting || !writable_) return;
  while (out_offset_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_offset_, out_.size() - out_offset_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        writable_ = false;  // EPOLLOUT (edge-triggered) will say when to go on
        break;
      }
      if (errno == EINTR) continue;
      return Close(Errno("write", errno));
    }
    out_offset_ += static_cast<size_t>(n);
    last_send_ns_ = now_ns;
  }
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  } else if (out_offset_ > (1u << 20)) {
    out_.erase(0, out_offset_);  // keep the buffer from creeping under sustained pressure
    out_offset_ = 0;
  }
}

void Connection::Close(std::string_view reason) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::string().swap(in_);
  std::string().swap(out_);
  out_offset_ = 0;
  std::vector<uint8_t>().swap(id_state_);
  sink_->OnClosed(*this, reason);
}

}  // namespace herald::bench
