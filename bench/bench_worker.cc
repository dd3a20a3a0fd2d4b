#include "bench_worker.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_connection.h"

namespace herald::bench {
namespace {

// A publisher stops encoding while this much is waiting for the socket, so TCP
// back-pressure (and not an ever-growing buffer) paces QoS 0.
constexpr size_t kMaxBuffered = 256 * 1024;
constexpr size_t kReadChunk = 256 * 1024;
constexpr int kMaxEvents = 1024;
constexpr int64_t kIdlePollNs = 5'000'000;   // how often an idle worker looks at the board
constexpr int64_t kBudgetPollNs = 200'000;   // a publisher out of end-to-end budget
constexpr uint64_t kSourceSpread = 25'000;   // clients per loopback source address
constexpr uint64_t kUnbounded = UINT64_MAX;  // --messages 0: publish until told to stop

enum class Role : uint8_t { kIdle, kSubscriber, kPublisher };

// One connection's part in the scenario.
struct Client {
  std::unique_ptr<Connection> conn;
  Role role = Role::kIdle;
  std::string id;
  std::string filter;              // subscriber
  std::vector<uint64_t> next_seq;  // subscriber: next expected seq per publisher
  int32_t publisher = -1;          // index into Worker::publishers_
  uint64_t global = 0;             // the client's index over all workers (with the offset)
  bool ready = false;
  bool closed = false;
};

struct Publisher {
  uint32_t client = 0;   // index into Worker::clients_
  uint32_t ordinal = 0;  // publisher index over all workers (goes in the payload)
  uint64_t quota = 0;
  uint64_t sent = 0;
  uint64_t settled = 0;             // completed handshakes (QoS 0: written)
  double rate = 0;                  // msgs/s, 0 = unpaced
  std::vector<std::string> topics;  // round-robin
  bool done = false;
};

class Worker final : public ConnectionSink {
 public:
  Worker(const BenchOptions& options, Board* board, int index)
      : o_(options), board_(board), slot_(&board->slots[index]), index_(index) {}

  int Run();

  void OnConnack(Connection& c, int64_t now_ns) override;
  void OnSuback(Connection& c, const mqtt::Suback& s, int64_t now_ns) override;
  void OnMessage(Connection& c, const mqtt::Publish& p, int64_t now_ns) override;
  void OnPublishDone(Connection& c) override;
  void OnClosed(Connection& c, std::string_view reason) override;
  void MarkDirty(Connection& c) override { dirty_.push_back(c.index()); }

 private:
  uint32_t AddClient(Role role, std::string id, std::string filter, uint64_t source_key);
  void PlanClients();
  void AddPublisher(uint32_t client, uint32_t ordinal, uint64_t quota, double rate,
                    std::vector<std::string> topics);
  void StartConnects(int64_t now_ns);
  void SetupDone(Client& client, int64_t now_ns);
  void Pump(Publisher& p, int64_t now_ns, uint64_t* budget);
  uint64_t EndToEndBudget() const;
  bool PumpAll(int64_t now_ns, int64_t* wake_ns);
  void FlushDirty(int64_t now_ns);
  void KeepAlive(int64_t now_ns);
  void PublishCounters();
  int64_t Wait(int64_t timeout_ns);
  void Shutdown();

  const BenchOptions& o_;
  Board* board_;
  WorkerSlot* slot_;
  int index_;
  int epoll_fd_ = -1;
  std::string scratch_;
  std::vector<Client> clients_;
  std::vector<uint64_t> source_keys_;  // per client: which loopback source to use
  std::vector<Publisher> publishers_;
  std::vector<uint32_t> dirty_;
  std::string payload_;
  size_t next_start_ = 0;
  uint64_t in_setup_ = 0;
  uint64_t setup_finished_ = 0;
  uint32_t publishers_total_ = 0;  // over all workers: sizes next_seq
  size_t first_pump_ = 0;          // rotates, so a shared budget is shared fairly
  bool running_ = false;
  bool publishing_stopped_ = false;
  int64_t run_start_ns_ = 0;
  int64_t next_keepalive_ns_ = 0;

  // Local counters, copied to the slot by PublishCounters().
  uint64_t connected_ = 0, failed_ = 0, lost_ = 0, published_ = 0, completed_ = 0;
  uint64_t received_ = 0, duplicates_ = 0, pings_ = 0, publishers_done_ = 0;
  int64_t first_connect_ns_ = 0, last_connack_ns_ = 0;
  int64_t first_publish_ns_ = 0, last_receive_ns_ = 0;
  LatencyHistogram* latency_ = nullptr;
  std::unique_ptr<LatencyHistogram> latency_storage_;
};

uint32_t Worker::AddClient(Role role, std::string id, std::string filter, uint64_t source_key) {
  auto index = static_cast<uint32_t>(clients_.size());
  Client& c = clients_.emplace_back();
  c.conn = std::make_unique<Connection>(index, this);
  c.role = role;
  c.id = std::move(id);
  c.filter = std::move(filter);
  c.global = source_key;
  if (role == Role::kSubscriber) c.next_seq.assign(publishers_total_, 0);
  source_keys_.push_back(source_key);
  return index;
}

void Worker::AddPublisher(uint32_t client, uint32_t ordinal, uint64_t quota, double rate,
                          std::vector<std::string> topics) {
  clients_[client].publisher = static_cast<int32_t>(publishers_.size());
  Publisher& p = publishers_.emplace_back();
  p.client = client;
  p.ordinal = ordinal;
  p.quota = quota;
  p.rate = rate;
  p.topics = std::move(topics);
}

// Decides which connections this worker owns. The N scenario clients are split in
// contiguous ranges; the single counterpart (fanout's publisher, fanin's subscriber,
// both latency clients) lives on worker 0.
void Worker::PlanClients() {
  const std::string base = "bench-" + std::string(ScenarioName(o_.scenario)) + "-";
  const uint64_t off = o_.client_offset;
  const std::string extra = std::to_string(off);
  ClientRange r = RangeOf(o_.clients, index_, o_.procs);
  switch (o_.scenario) {
    case Scenario::kConn:
      for (uint64_t i = r.begin; i < r.end; ++i) {
        AddClient(Role::kIdle, base + std::to_string(off + i), "", off + i);
      }
      break;
    case Scenario::kFanout: {
      publishers_total_ = 1;
      for (uint64_t i = r.begin; i < r.end; ++i) {
        AddClient(Role::kSubscriber, base + std::to_string(off + i),
                  o_.topic_prefix + std::to_string(off + i), off + i);
      }
      if (index_ != 0 || o_.external) break;
      std::vector<std::string> topics;
      topics.reserve(o_.clients);
      for (uint64_t i = 0; i < o_.clients; ++i) {
        topics.push_back(o_.topic_prefix + std::to_string(off + i));
      }
      uint32_t pub = AddClient(Role::kPublisher, base + "pub-" + extra, "", off + o_.clients);
      AddPublisher(pub, 0, o_.messages ? o_.messages : kUnbounded, o_.rate, std::move(topics));
      break;
    }
    case Scenario::kFanin: {
      publishers_total_ = static_cast<uint32_t>(o_.clients);
      if (index_ == 0) {
        AddClient(Role::kSubscriber, base + "sub-" + extra,
                  o_.wildcard ? o_.topic_prefix + "+" : o_.topic, off + o_.clients);
      }
      for (uint64_t i = r.begin; i < r.end; ++i) {
        uint64_t quota = o_.messages / o_.clients + (i < o_.messages % o_.clients ? 1 : 0);
        if (o_.messages == 0) quota = kUnbounded;
        std::string topic = o_.wildcard ? o_.topic_prefix + std::to_string(off + i) : o_.topic;
        uint32_t c = AddClient(Role::kPublisher, base + std::to_string(off + i), "", off + i);
        AddPublisher(c, static_cast<uint32_t>(i), quota, o_.rate / static_cast<double>(o_.clients),
                     {topic});
      }
      break;
    }
    case Scenario::kLatency: {
      publishers_total_ = 1;
      if (index_ != 0) break;
      AddClient(Role::kSubscriber, base + "sub-" + extra, o_.topic, off);
      uint32_t pub = AddClient(Role::kPublisher, base + "pub-" + extra, "", off + 1);
      AddPublisher(pub, 0, o_.messages, o_.rate, {o_.topic});
      break;
    }
  }
}

void Worker::StartConnects(int64_t now_ns) {
  while (next_start_ < clients_.size() && in_setup_ < o_.connect_concurrency) {
    Client& c = clients_[next_start_];
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl(INADDR_ANY);
    if (o_.spread_sources) {
      uint32_t k = static_cast<uint32_t>(source_keys_[next_start_] / kSourceSpread);
      source.sin_addr.s_addr = htonl((127u << 24) | (1 + k));
    }
    mqtt::Connect connect;
    connect.client_id = c.id;
    connect.clean_session = true;
    connect.keep_alive = o_.keep_alive_s;
    connect.username = o_.username;
    connect.password = o_.password;
    if (const uint64_t i = c.global - o_.client_offset; i < o_.credentials.size()) {
      connect.username = o_.credentials[i].first;
      connect.password = o_.credentials[i].second;
    }
    ++next_start_;
    ++in_setup_;
    if (first_connect_ns_ == 0) first_connect_ns_ = now_ns;
    c.conn->Start(epoll_fd_, o_.server, source, connect, now_ns);  // failure: OnClosed
  }
}

void Worker::SetupDone(Client& client, int64_t now_ns) {
  client.ready = true;
  --in_setup_;
  ++setup_finished_;
  last_connack_ns_ = now_ns;
}

void Worker::OnConnack(Connection& c, int64_t now_ns) {
  Client& client = clients_[c.index()];
  ++connected_;
  if (client.role == Role::kSubscriber) {
    c.Subscribe(client.filter, o_.sub_qos);
  } else {
    SetupDone(client, now_ns);
  }
}

void Worker::OnSuback(Connection& c, const mqtt::Suback& s, int64_t now_ns) {
  Client& client = clients_[c.index()];
  if (client.ready) return;
  if (s.codes.empty() || s.codes[0] == mqtt::SubackCode::kFailure) {
    return c.Close("SUBACK refused the subscription to " + client.filter);
  }
  SetupDone(client, now_ns);
}

void Worker::OnMessage(Connection& c, const mqtt::Publish& p, int64_t now_ns) {
  Client& client = clients_[c.index()];
  if (client.role != Role::kSubscriber) return;
  if (o_.external) {
    // The broker's own messages: each one counts; the rate runs from the first.
    if (first_publish_ns_ == 0) first_publish_ns_ = now_ns;
    ++received_;
    last_receive_ns_ = now_ns;
    return;
  }
  if (p.payload.size() < kPayloadHeader) return;
  uint64_t seq, sent_ns;
  uint32_t pub;
  std::memcpy(&seq, p.payload.data(), 8);
  std::memcpy(&sent_ns, p.payload.data() + 8, 8);
  std::memcpy(&pub, p.payload.data() + 16, 4);
  if (pub >= client.next_seq.size()) return;  // not one of ours
  uint64_t& next = client.next_seq[pub];
  if (seq < next) {
    ++duplicates_;
    return;
  }
  next = seq + 1;
  ++received_;
  last_receive_ns_ = now_ns;
  if (latency_ != nullptr && static_cast<int64_t>(sent_ns) <= now_ns) {
    latency_->Record(static_cast<uint64_t>(now_ns - static_cast<int64_t>(sent_ns)));
  }
}

void Worker::OnPublishDone(Connection& c) {
  ++completed_;
  int32_t p = clients_[c.index()].publisher;
  if (p >= 0) ++publishers_[p].settled;
}

void Worker::OnClosed(Connection& c, std::string_view reason) {
  Client& client = clients_[c.index()];
  client.closed = true;
  RecordError(slot_, "client " + client.id + ": " + std::string(reason));
  if (!client.ready) {
    ++failed_;
    --in_setup_;
    ++setup_finished_;
    return;
  }
  ++lost_;
  if (client.publisher >= 0 && !publishers_[client.publisher].done) {
    publishers_[client.publisher].done = true;  // it will send no more
    ++publishers_done_;
  }
}

// Sends what the publisher may send now: within its quota, its schedule (when
// paced), the end-to-end budget, its in-flight window and the write-buffer bound.
void Worker::Pump(Publisher& p, int64_t now_ns, uint64_t* budget) {
  Connection& c = *clients_[p.client].conn;
  uint64_t allowed = p.quota;
  if (p.rate > 0) {
    double due = static_cast<double>(now_ns - run_start_ns_) * p.rate / 1e9;
    allowed = std::min<uint64_t>(p.quota, static_cast<uint64_t>(due) + 1);
  }
  while (*budget > 0 && p.sent < allowed && c.CanPublish(o_.window, kMaxBuffered)) {
    std::memcpy(payload_.data(), &p.sent, 8);
    std::memcpy(payload_.data() + 8, &now_ns, 8);
    std::memcpy(payload_.data() + 16, &p.ordinal, 4);
    c.Publish(p.topics[p.sent % p.topics.size()], payload_, o_.qos);
    ++p.sent;
    ++published_;
    --*budget;
    if (first_publish_ns_ == 0) first_publish_ns_ = now_ns;
  }
}

// How many more messages may be published before the oldest is received, with
// --e2e-window; unlimited without. Counts every worker's publishers and
// subscribers (the other slots lag by at most one of their wakeups).
uint64_t Worker::EndToEndBudget() const {
  if (o_.e2e_window == 0) return UINT64_MAX;
  uint64_t published = published_, received = received_;
  for (int w = 0; w < board_->workers; ++w) {
    if (w == index_) continue;
    published += board_->slots[w].published.load(std::memory_order_relaxed);
    received += board_->slots[w].received.load(std::memory_order_relaxed);
  }
  uint64_t outstanding = published - std::min(published, received);
  return o_.e2e_window - std::min<uint64_t>(o_.e2e_window, outstanding);
}

// Pumps every publisher; returns true if one could send more right away, and
// lowers *wake_ns to the next paced send time (or the next look at other
// workers' receptions, when the end-to-end budget is spent).
bool Worker::PumpAll(int64_t now_ns, int64_t* wake_ns) {
  bool more = false;
  if (!publishing_stopped_ && board_->stop_publishing.load(std::memory_order_acquire) != 0) {
    publishing_stopped_ = true;
    for (Publisher& p : publishers_) p.quota = p.sent;  // done once what is out settles
  }
  uint64_t budget = EndToEndBudget();
  const size_t n = publishers_.size();
  for (size_t k = 0; k < n; ++k) {
    Publisher& p = publishers_[(first_pump_ + k) % n];
    if (p.done) continue;
    Pump(p, now_ns, &budget);
    Connection& c = *clients_[p.client].conn;
    if (p.sent < p.quota) {
      if (budget == 0) {
        *wake_ns = std::min(*wake_ns, now_ns + kBudgetPollNs);
      } else if (p.rate > 0) {
        auto due = run_start_ns_ +
                   static_cast<int64_t>(std::ceil(static_cast<double>(p.sent) * 1e9 / p.rate));
        *wake_ns = std::min(*wake_ns, std::max(due, now_ns));
      } else if (c.CanPublish(o_.window, kMaxBuffered) && c.writable()) {
        more = true;
      }
    }
  }
  if (n > 0) first_pump_ = (first_pump_ + 1) % n;
  return more;
}

void Worker::FlushDirty(int64_t now_ns) {
  // Flush may close a connection, and Close never marks dirty, so the list is stable.
  for (uint32_t i : dirty_) clients_[i].conn->Flush(now_ns);
  dirty_.clear();
  // A QoS 0 publish is settled once written; QoS 1/2 in OnPublishDone.
  for (Publisher& p : publishers_) {
    Connection& c = *clients_[p.client].conn;
    if (o_.qos == mqtt::QoS::kAtMostOnce && c.buffered() == 0) {
      completed_ += p.sent - p.settled;
      p.settled = p.sent;
    }
    if (!p.done && p.sent == p.quota && p.settled == p.quota) {
      p.done = true;
      ++publishers_done_;
    }
  }
}

void Worker::KeepAlive(int64_t now_ns) {
  if (o_.keep_alive_s == 0 || now_ns < next_keepalive_ns_) return;
  next_keepalive_ns_ = now_ns + 1'000'000'000;
  // The broker drops a client silent for 1.5 keep-alives; ping after half of one.
  const int64_t idle_ns = int64_t{o_.keep_alive_s} * 500'000'000;
  for (Client& c : clients_) {
    if (c.conn->state() == Connection::State::kOpen && now_ns - c.conn->last_send_ns() > idle_ns) {
      c.conn->Ping();
      ++pings_;
    }
  }
}

void Worker::PublishCounters() {
  auto put = [](std::atomic<uint64_t>& a, uint64_t v) { a.store(v, std::memory_order_relaxed); };
  put(slot_->connected, connected_);
  put(slot_->failed, failed_);
  put(slot_->lost, lost_);
  put(slot_->published, published_);
  put(slot_->completed, completed_);
  put(slot_->received, received_);
  put(slot_->duplicates, duplicates_);
  put(slot_->pings, pings_);
  put(slot_->publishers_done, publishers_done_);
  slot_->first_connect_ns.store(first_connect_ns_, std::memory_order_relaxed);
  slot_->last_connack_ns.store(last_connack_ns_, std::memory_order_relaxed);
  slot_->first_publish_ns.store(first_publish_ns_, std::memory_order_relaxed);
  slot_->last_receive_ns.store(last_receive_ns_, std::memory_order_relaxed);
  if (setup_finished_ == clients_.size() && slot_->ready.load(std::memory_order_relaxed) == 0) {
    slot_->ready.store(1, std::memory_order_release);
  }
}

// Waits for readiness up to timeout_ns, dispatches the events; returns the time.
int64_t Worker::Wait(int64_t timeout_ns) {
  epoll_event events[kMaxEvents];
  timespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
  int n = epoll_pwait2(epoll_fd_, events, kMaxEvents, &ts, nullptr);
  if (n < 0 && errno == ENOSYS) {
    n = epoll_wait(epoll_fd_, events, kMaxEvents,
                   static_cast<int>((timeout_ns + 999'999) / 1'000'000));
  }
  int64_t now_ns = MonoNs();
  for (int i = 0; i < n; ++i) {
    clients_[events[i].data.u32].conn->OnEvents(events[i].events, &scratch_, now_ns);
  }
  return now_ns;
}

void Worker::Shutdown() {
  for (Client& c : clients_) c.conn->Disconnect();
  FlushDirty(MonoNs());
  PublishCounters();
  clients_.clear();  // closes every socket; no callbacks from destructors
  if (latency_ != nullptr) slot_->latency = *latency_;
  slot_->finished.store(1, std::memory_order_release);
}

int Worker::Run() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    RecordError(slot_, std::string("epoll_create1: ") + std::strerror(errno));
    slot_->finished.store(1, std::memory_order_release);
    return 1;
  }
  scratch_.resize(kReadChunk);
  payload_.assign(o_.payload, 'x');
  if (o_.scenario == Scenario::kLatency) {
    latency_storage_ = std::make_unique<LatencyHistogram>();
    latency_storage_->Clear();
    latency_ = latency_storage_.get();
  }
  PlanClients();
  int64_t now_ns = MonoNs();
  while (board_->phase.load(std::memory_order_acquire) != static_cast<int>(Phase::kStop)) {
    if (!running_ &&
        board_->phase.load(std::memory_order_acquire) == static_cast<int>(Phase::kRun)) {
      running_ = true;
      run_start_ns_ = board_->run_start_ns.load(std::memory_order_relaxed);
    }
    StartConnects(now_ns);
    int64_t wake_ns = now_ns + kIdlePollNs;
    if (running_ && PumpAll(now_ns, &wake_ns)) wake_ns = now_ns;
    FlushDirty(now_ns);
    KeepAlive(now_ns);
    PublishCounters();
    now_ns = Wait(std::max<int64_t>(0, wake_ns - now_ns));
  }
  Shutdown();
  close(epoll_fd_);
  return 0;
}

}  // namespace

int RunWorker(const BenchOptions& options, Board* board, int index) {
  Worker worker(options, board, index);
  return worker.Run();
}

}  // namespace herald::bench
