// Simulated devices: one MQTT 3.1.1 connection each (a persistent session,
// QoS 1, username = device id, password = token) on loopback, all served by one
// epoll loop on its own thread. A device subscribes to u/<user>, acknowledges
// every push (so the gateway reports it delivered), hands it to its owner, and
// publishes the receipts it is given to r/<user>. Used by `herald simulate
// --through-mqtt` and the demo of `herald serve --demo`.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/time_format.h"
#include "mqtt/codec.h"

namespace herald::sim {

// "127.0.0.1:1883" as a socket address.
inline bool Address(const std::string& hostport, sockaddr_in* a) {
  const size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return false;
  std::memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(static_cast<uint16_t>(std::stoi(hostport.substr(colon + 1))));
  return ::inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &a->sin_addr) == 1;
}

// The simulated devices: one MQTT connection each (persistent session, QoS 1),
// served by one epoll loop on its own thread.
class Devices {
 public:
  struct Push {
    size_t user;
    std::string message_id, account_id;
    Micros expires_at = 0;
  };

  explicit Devices(size_t n = 0) : dev_(n) { epoll_ = ::epoll_create1(0); }
  ~Devices() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (auto& d : dev_) {
      if (d.fd >= 0) ::close(d.fd);
    }
    ::close(epoll_);
  }
  void SetCredentials(size_t i, std::string user, std::string device, std::string token) {
    dev_[i].user = std::move(user);
    dev_[i].device = std::move(device);
    dev_[i].token = std::move(token);
  }
  // A new device, connected from now on; its index.
  size_t Add(std::string user, std::string device, std::string token) {
    std::lock_guard<std::mutex> l(mu_);
    dev_.emplace_back();
    dev_.back().user = std::move(user);
    dev_.back().device = std::move(device);
    dev_.back().token = std::move(token);
    return dev_.size() - 1;
  }
  std::string UserOf(size_t i) {
    std::lock_guard<std::mutex> l(mu_);
    return dev_[i].user;
  }
  void SetServer(const std::string& addr) {
    std::lock_guard<std::mutex> l(mu_);
    Address(addr, &server_);
  }
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  // Whether the device should be connected (it reconnects while it should).
  void Want(size_t i, bool online) {
    std::lock_guard<std::mutex> l(mu_);
    dev_[i].want = online;
  }
  void Receipt(size_t i, std::string payload) {
    std::lock_guard<std::mutex> l(mu_);
    dev_[i].receipts.push_back(std::move(payload));
  }
  std::vector<Push> Take() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Push> out;
    out.swap(got_);
    return out;
  }
  size_t connected() const { return connected_.load(); }
  std::uint64_t received() const { return received_.load(); }

 private:
  struct Dev {
    std::string user, device, token;
    int fd = -1;
    bool want = true, open = false;
    std::string in, out;
    std::vector<std::string> receipts;
    std::uint16_t next_id = 1;
    std::uint32_t unacked = 0;
    std::vector<std::pair<std::uint16_t, std::string>> inflight;  // receipts sent, not acknowledged
    std::chrono::steady_clock::time_point retry{};
  };

  void Close(size_t i) {
    Dev& d = dev_[i];
    if (d.fd >= 0) {
      ::epoll_ctl(epoll_, EPOLL_CTL_DEL, d.fd, nullptr);
      ::close(d.fd);
    }
    if (d.open) --connected_;
    d.fd = -1;
    d.open = false;
    d.in.clear();
    d.out.clear();
    d.unacked = 0;
    // Receipts not acknowledged go again after the reconnect (at least once).
    for (auto& [id, r] : d.inflight) d.receipts.insert(d.receipts.begin(), std::move(r));
    d.inflight.clear();
    d.retry = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  }
  void Open(size_t i) {
    Dev& d = dev_[i];
    d.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (d.fd < 0) return;
    int one = 1;
    ::setsockopt(d.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::connect(d.fd, reinterpret_cast<sockaddr*>(&server_), sizeof server_);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = i;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, d.fd, &ev);
    mqtt::Connect c;
    c.client_id = d.device;
    c.clean_session = false;
    c.keep_alive = 0;
    c.username = d.device;
    c.password = d.token;
    mqtt::Encode(c, &d.out);
    mqtt::Subscribe s;
    s.packet_id = NextId(d);
    s.subscriptions.push_back({"u/" + d.user, mqtt::QoS::kAtLeastOnce});
    mqtt::Encode(s, &d.out);
  }
  static std::uint16_t NextId(Dev& d) {
    if (d.next_id == 0) d.next_id = 1;
    return d.next_id++;
  }
  void Flush(size_t i) {
    Dev& d = dev_[i];
    while (d.fd >= 0 && !d.out.empty()) {
      const ssize_t n = ::send(d.fd, d.out.data(), d.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        d.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS)) return;
      Close(i);
      return;
    }
  }
  void Read(size_t i) {
    Dev& d = dev_[i];
    char buf[65536];
    while (d.fd >= 0) {
      const ssize_t n = ::recv(d.fd, buf, sizeof buf, 0);
      if (n > 0) {
        d.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Close(i);
      return;
    }
    size_t at = 0;
    while (d.fd >= 0) {
      mqtt::DecodeResult r = mqtt::Decode(std::string_view(d.in).substr(at));
      if (r.outcome != mqtt::DecodeOutcome::kPacket) {
        if (r.outcome == mqtt::DecodeOutcome::kError) Close(i);
        break;
      }
      at += r.consumed;
      if (std::holds_alternative<mqtt::Connack>(r.packet)) {
        if (std::get<mqtt::Connack>(r.packet).code != mqtt::ConnackCode::kAccepted) {
          Close(i);
          break;
        }
        d.open = true;
        ++connected_;
      } else if (auto* p = std::get_if<mqtt::Publish>(&r.packet)) {
        // A push: acknowledged (the gateway then reports it delivered), and kept.
        if (p->qos == mqtt::QoS::kAtLeastOnce) mqtt::Encode(mqtt::Puback{p->packet_id}, &d.out);
        auto j = nlohmann::json::parse(p->payload, nullptr, false);
        if (j.is_object() && j.contains("id") && j["id"].is_string()) {
          Push push{i, j["id"].get<std::string>(), {}, 0};
          if (j.contains("account_id") && j["account_id"].is_string()) push.account_id = j["account_id"].get<std::string>();
          if (j.contains("expires_at") && j["expires_at"].is_string()) {
            auto t = ParseIsoTime(j["expires_at"].get<std::string>());
            if (t.ok()) push.expires_at = *t;
          }
          got_.push_back(std::move(push));  // the loop holds mu_
          ++received_;
        }
      } else if (auto* ack = std::get_if<mqtt::Puback>(&r.packet)) {
        for (size_t k = 0; k < d.inflight.size(); ++k) {
          if (d.inflight[k].first == ack->packet_id) {
            d.inflight.erase(d.inflight.begin() + static_cast<long>(k));
            if (d.unacked) --d.unacked;
            break;
          }
        }
      }
    }
    if (d.fd >= 0) d.in.erase(0, at);
  }
  void Loop() {
    std::vector<epoll_event> events(1024);
    while (!stop_) {
      {
        std::lock_guard<std::mutex> l(mu_);
        const auto now = std::chrono::steady_clock::now();
        for (size_t i = 0; i < dev_.size(); ++i) {
          Dev& d = dev_[i];
          if (!d.want && d.fd >= 0) Close(i);
          if (d.want && d.fd < 0 && now >= d.retry && !d.user.empty()) Open(i);
          // Up to 16 receipts in flight per device.
          while (d.open && !d.receipts.empty() && d.unacked < 16) {
            mqtt::Publish p;
            p.qos = mqtt::QoS::kAtLeastOnce;
            p.packet_id = NextId(d);
            const std::string topic = "r/" + d.user;
            p.topic = topic;
            d.inflight.emplace_back(p.packet_id, std::move(d.receipts.front()));
            d.receipts.erase(d.receipts.begin());
            p.payload = d.inflight.back().second;
            mqtt::Encode(p, &d.out);
            ++d.unacked;
          }
          if (!d.out.empty()) Flush(i);
        }
      }
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 5);
      std::lock_guard<std::mutex> l(mu_);
      for (int k = 0; k < n; ++k) {
        const size_t i = events[static_cast<size_t>(k)].data.u64;
        if (events[static_cast<size_t>(k)].events & (EPOLLERR | EPOLLHUP)) {
          Close(i);
          continue;
        }
        if (events[static_cast<size_t>(k)].events & EPOLLIN) Read(i);
        if (events[static_cast<size_t>(k)].events & EPOLLOUT) Flush(i);
      }
    }
  }

  std::vector<Dev> dev_;
  int epoll_ = -1;
  sockaddr_in server_{};
  std::mutex mu_;
  std::vector<Push> got_;
  std::atomic<size_t> connected_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace herald::sim
