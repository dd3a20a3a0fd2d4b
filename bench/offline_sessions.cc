// herald-offline-sessions DIR SESSIONS MESSAGES: fills a herald data directory
// with SESSIONS persistent MQTT sessions (client ids "off-<i>", each subscribed at
// QoS 1 to "off/<i>") and MESSAGES queued QoS 1 messages for each, through the
// real broker and store, as if devices had subscribed and gone offline while
// pushes kept coming. Then `herald serve --mqtt-open --data-dir DIR` starts on
// it; bench/offline_sessions.sh and the black-box test measure its memory.
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "mqtt/broker.h"
#include "mqtt/codec.h"
#include "mqtt/gateway.h"
#include "store/db.h"

namespace {

using namespace herald;
using namespace herald::mqtt;

class QuietLink final : public Link {
 public:
  void Flush() override {
    if (out.size() > (1 << 20)) out.clear();  // acknowledgements nobody reads
  }
  void Close() override {}
  std::string Remote() const override { return "offline-sessions"; }
};

// Commit callbacks come back here and run on the main thread, like the loop.
class Inbox {
 public:
  void Post(std::function<void()> fn) {
    std::lock_guard<std::mutex> l(mu_);
    work_.push_back(std::move(fn));
  }
  void Drain(store::Db& db) {
    (void)db.Write(store::WriteBatch());  // behind every commit issued so far
    std::vector<std::function<void()>> work;
    {
      std::lock_guard<std::mutex> l(mu_);
      work.swap(work_);
    }
    for (auto& fn : work) fn();
  }

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> work_;
};

template <typename P>
void Send(Broker& b, Link& link, const P& packet) {
  std::string bytes;
  Encode(packet, &bytes);
  b.OnInput(&link, bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: herald-offline-sessions DIR SESSIONS MESSAGES\n");
    return 2;
  }
  std::string dir = argv[1];
  long sessions = std::stol(argv[2]), messages = std::stol(argv[3]);
  std::filesystem::create_directories(dir);
  MetricsRegistry metrics;
  SystemClock clock;
  auto db = store::Db::Open(dir + "/store", {}, GatewayColumnFamilies());
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  MqttConfig config;
  config.open_mode = true;
  config.max_queued_messages = static_cast<std::uint64_t>(messages) + 10;
  Inbox inbox;
  BrokerOptions o{config, db->get(), nullptr, nullptr, &clock, &metrics,
                  [&](std::function<void()> fn) { inbox.Post(std::move(fn)); }};
  Broker broker(o);
  if (!broker.Recover().ok()) return 1;
  std::string payload(120, 'p');  // a small push: ids, title, body
  QuietLink pub;
  broker.OnOpen(&pub);
  Send(broker, pub, mqtt::Connect{"off-publisher", true, 0, {}, {}, {}});
  const long kChunk = 2000;
  for (long first = 0; first < sessions; first += kChunk) {
    long last = std::min(sessions, first + kChunk);
    std::vector<std::unique_ptr<QuietLink>> links;
    for (long i = first; i < last; ++i) {
      auto link = std::make_unique<QuietLink>();
      broker.OnOpen(link.get());
      Send(broker, *link, mqtt::Connect{"off-" + std::to_string(i), false, 0, {}, {}, {}});
      std::string topic = "off/" + std::to_string(i);
      Send(broker, *link, Subscribe{1, {{topic, QoS::kAtLeastOnce}}});
      links.push_back(std::move(link));
    }
    inbox.Drain(**db);
    for (auto& l : links) broker.OnClosed(l.get());  // offline from now on
    std::uint16_t id = 1;
    for (long m = 0; m < messages; ++m) {
      for (long i = first; i < last; ++i) {
        std::string topic = "off/" + std::to_string(i);
        Send(broker, pub, Publish{false, QoS::kAtLeastOnce, false, id, topic, payload});
        if (++id == 0) id = 1;
      }
      inbox.Drain(**db);
    }
    std::fprintf(stderr, "\r%ld sessions", last);
  }
  broker.OnClosed(&pub);
  inbox.Drain(**db);
  (void)(*db)->Flush();
  std::fprintf(stderr, "\n%ld sessions, %ld queued messages each\n", sessions, messages);
  return 0;
}
