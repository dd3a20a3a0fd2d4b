// Broker: MQTT 3.1.1 protocol logic, independent of sockets.
//
// A transport (TCP, WebSocket, TLS) owns each network connection as a Link. It
// feeds received bytes to OnInput(), which decodes and handles every complete
// packet and appends the answers to the Link's output buffer; the transport writes
// that buffer once per event-loop turn. The broker keeps sessions, the
// subscription trie, retained messages and the QoS 1/2 flows, and persists
// persistent sessions (clean session = 0) and their queued QoS 1/2 messages in the
// store, so they survive restarts and kill -9.
//
// Lives on the gateway's event loop: every method must be called on that thread,
// except where stated.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "mqtt/mqtt_config.h"
#include "core/metrics.h"
#include "mqtt/codec.h"
#include "mqtt/delivery.h"
#include "mqtt/devices.h"
#include "mqtt/trie.h"
#include "store/db.h"

namespace herald::mqtt {

struct ConnState;

// One network connection, as the broker sees it. Implemented by transports.
class Link {
 public:
  virtual ~Link() = default;
  // Bytes to send; the broker appends encoded packets, then calls Flush().
  std::string out;
  // Asks the transport to write `out` at the end of this loop turn.
  virtual void Flush() = 0;
  // Writes what is in `out`, then closes. The transport later calls
  // Broker::OnClosed() exactly once.
  virtual void Close() = 0;
  virtual std::string Remote() const = 0;
  // Flow control: stop handing input to the broker until ResumeInput(). The
  // transport stops reading the socket, so TCP pushes back on the peer; bytes
  // already read stay queued and are handled first on resume.
  virtual void PauseInput() { input_paused_ = true; }
  virtual void ResumeInput() { input_paused_ = false; }
  bool input_paused() const { return input_paused_; }
  // Bytes queued for the peer and not yet written.
  virtual size_t pending_output() const { return out.size(); }

  ConnState* state = nullptr;  // owned by the broker while the link is open

 protected:
  bool input_paused_ = false;
};

// A message as routed: shared by every session it fans out to.
struct Message {
  std::string topic;  // internal topic: the tenant's mount prefix + the client topic
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  Micros expires_at = 0;  // 0 = never
  bool from_retained = false;  // a retained copy sent for a new subscription
  std::string message_id;      // set for a push from Deliver(), for outcome events
  std::string account_id;      // of a push, carried into its outcome events
  std::string campaign_id;
  // Set for a message from Gateway::Deliver: who is waiting for the outcome.
  std::shared_ptr<struct DeliveryTracker> tracker;
};
using MessagePtr = std::shared_ptr<const Message>;

struct BrokerOptions {
  MqttConfig config;
  store::Db* db = nullptr;                  // required
  const DeviceRegistry* devices = nullptr;  // required unless open_mode
  EventSink* events = nullptr;              // may be null
  const Clock* clock = nullptr;             // required
  MetricsRegistry* metrics = nullptr;       // required
  // Runs fn on the broker's loop; used to come back from store commits.
  std::function<void(std::function<void()>)> post;
  // Runs fn off the loop (a store read); null: on the calling thread.
  std::function<void(std::function<void()>)> background;
};

// Column families the broker persists to. On-disk format (see persist.cc).
inline constexpr const char* kSessionsFamily = "mqtt_sessions";
inline constexpr const char* kMessagesFamily = "mqtt_messages";
inline constexpr const char* kRetainedFamily = "mqtt_retained";

// What transports hand their connections and bytes to: the broker itself, or, on
// a loop that only does I/O, a forwarder to the broker's loop (remote_link.h).
class LinkHandler {
 public:
  virtual ~LinkHandler() = default;
  // A transport accepted `link`.
  virtual void OnOpen(Link* link) = 0;
  // Handles every complete packet at the front of `input`; returns how many bytes
  // were consumed (the rest is kept for the next call).
  virtual size_t OnInput(Link* link, std::string_view input) = 0;
  // The transport closed `link`; it must not be used afterwards.
  virtual void OnClosed(Link* link) = 0;
};

class Broker final : public LinkHandler {
 public:
  explicit Broker(BrokerOptions options);
  ~Broker() override;

  // Loads persistent sessions, their queued messages and retained messages.
  Status Recover();

  // A transport accepted `link`.
  void OnOpen(Link* link) override;
  // Handles every complete packet at the front of `input`; returns how many bytes
  // were consumed. On a protocol error it closes the link.
  size_t OnInput(Link* link, std::string_view input) override;
  // The transport closed `link` (error, EOF or after Close()). Publishes the will
  // unless the client sent DISCONNECT. The link must not be used afterwards.
  void OnClosed(Link* link) override;

  // Keep-alive and expiry sweep; call periodically (about every 500 ms).
  void Tick();

  // Pushes `msg` to the user's topic and reports the outcome once.
  void Deliver(PushMessage msg, DeliveryCallback done);

  // Gauges for tests and benchmarks.
  size_t sessions() const { return sessions_.size(); }
  size_t connections() const { return conn_states_.size(); }

 private:
  struct Session;
  struct Outgoing;

  // Packet handlers (broker_connect.cc, broker_publish.cc, broker_subscribe.cc).
  bool HandlePacket(Link* link, Packet& packet);
  bool HandleConnect(Link* link, Connect& c);
  bool HandlePublish(Link* link, const Publish& p);
  bool HandlePuback(Link* link, std::uint16_t id);
  bool HandlePubrec(Link* link, std::uint16_t id);
  bool HandlePubrel(Link* link, std::uint16_t id);
  bool HandlePubcomp(Link* link, std::uint16_t id);
  bool HandleSubscribe(Link* link, const Subscribe& s);
  bool HandleUnsubscribe(Link* link, const Unsubscribe& u);

  // Routing and delivery (broker_publish.cc).
  // Routes to every matching session; returns the number of sessions reached.
  // Copies for persistent sessions are added to *batch, which the caller commits.
  size_t Route(const MessagePtr& msg, store::WriteBatch* batch);
  void Enqueue(Session& s, const MessagePtr& msg, std::uint8_t qos, store::WriteBatch* batch);
  void Pump(Session& s);  // moves queued messages into the in-flight window
  void SendPublish(Session& s, Outgoing& o, bool dup);
  void Complete(Session& s, std::uint16_t packet_id, bool qos2);
  void Drop(const char* reason, const MessagePtr& msg);
  void PublishWill(ConnState& c);
  void SendRetained(Session& s, const std::string& internal_filter, std::uint8_t qos);
  // Sets (or with an empty payload clears) a topic's retained message; the record
  // goes into *batch when given (committed before the publisher's acknowledgement).
  void SetRetained(const MessagePtr& msg, store::WriteBatch* batch = nullptr);

  // Sessions (broker_connect.cc).
  Session& AttachSession(Link* link, const Connect& c, bool* present);
  void DetachSession(ConnState& c);
  void DestroySession(Session& s);
  std::uint16_t NextPacketId(Session& s);

  // Queues that live on disk (broker_spill.cc): an offline persistent session
  // keeps no message in memory, a connected one a window of them.
  void Spill(Session& s);
  void Refill(Session& s);
  struct RefillResult;
  void OnRefilled(SessionId sid, RefillResult r);
  void EraseSpilled(const Session& s);
  // Messages on disk expire too: a pass over the store off the loop finds expired
  // ones, the loop takes those of offline sessions, the store erases them, and the
  // loop then counts and reports them (expired outcomes).
  struct ExpiredOnDisk;
  void StartExpiryPass();
  void OnExpiryFound(std::vector<ExpiredOnDisk> found);
  void OnExpiryErased(std::vector<ExpiredOnDisk> erased, Status st);

  // Persistence (persist.cc).
  void PersistSession(const Session& s, std::function<void(Status)> done = nullptr);
  void ErasePersistedSession(const Session& s);
  std::uint64_t PersistMessage(store::WriteBatch* batch, const Session& s, const Message& m,
                               std::uint8_t qos);
  void ErasePersistedMessage(const Session& s, std::uint64_t seq);
  // Records that message `seq` is in flight with `packet_id` (and, for QoS 2,
  // whether PUBREC came), so a restart resends it as a duplicate with its id.
  void PersistInflight(store::WriteBatch* batch, const Session& s, const Outgoing& o);
  void PutSessionRecord(store::WriteBatch* batch, const Session& s);
  // Commits through the store's group commit; `done` runs on the loop. A bounded
  // commit (new messages, which a publisher may send again) can be refused when
  // the store is saturated; bookkeeping of what was acknowledged never is.
  void Commit(store::WriteBatch batch, std::function<void(Status)> done, bool bounded = false);

  bool AclAllowsSubscribe(const ConnState& c, std::string_view filter) const;
  bool AclAllowsPublish(const ConnState& c, std::string_view topic) const;
  // A device's receipt: an event for the log, acknowledged once durable.
  // `batch` (the session's QoS 2 state) is committed with it, before the PUBREC.
  void HandleReceipt(ConnState& c, const Publish& p, store::WriteBatch batch);
  // Reports a gateway event to the sink (never for tenant-less open-mode traffic).
  // `push` names the message it is about, if any; `done` runs on the loop once it
  // is durable; `article_id` is the digest article a receipt names. Returns false
  // when the sink asked for back-pressure.
  bool Emit(const std::string& tenant, const std::string& user, const std::string& device,
            const char* type, const Message* push, std::function<void(Status)> done = nullptr,
            const std::string& article_id = {});
  // Flow control of a connection's input, by reason (kPause*): reading stops
  // while any reason holds.
  void Pause(ConnState& c, std::uint8_t reason);
  void Resume(ConnState& c, std::uint8_t reason);
  void OnSinkDrained();
  // Publishers paused because `s`'s queue passed the high-water mark go again.
  void ReleasePublishers(Session& s);
  // Pauses or resumes a publisher's input for flow control: paused while it feeds a
  // backed-up subscriber, unless its own session is backed up too (it must be read
  // for that queue to drain, so two clients feeding each other never both stop).
  void SyncFlow(ConnState& c);
  bool Backlogged(const ConnState& c) const;
  // A PUBACK/PUBREC that waited for a commit may go (or the link closes on failure).
  void AckReady(std::uint64_t conn_id, std::uint16_t packet_id, bool ok);
  void EmitOutcome(const DeliveryTracker& t, const char* type);
  // Queues a PUBACK (or PUBREC) for `link`; sent when `ready` and all before it are.
  void AckPublisher(ConnState& c, std::uint16_t id, bool qos2, bool ready);
  void AckPublisher(ConnState& c, std::uint16_t id, std::uint8_t kind, bool ready);
  void FlushAcks(ConnState& c);
  Link* LinkById(std::uint64_t conn_id) const;

  BrokerOptions opt_;
  store::ColumnFamily sessions_cf_, messages_cf_, retained_cf_;
  SubscriptionTrie trie_;
  std::unordered_map<SessionId, std::unique_ptr<Session>> sessions_;
  // Keyed by views of Session::key, which lives as long as its session.
  std::unordered_map<std::string_view, SessionId> session_by_key_;
  std::unordered_map<std::uint64_t, std::unique_ptr<ConnState>> conn_states_;  // by id
  std::map<std::string, MessagePtr> retained_;  // internal topic -> message
  SessionId next_session_id_ = 1;
  std::uint64_t next_seq_ = 1;
  std::uint64_t assigned_ids_ = 0;
  std::uint64_t ticks_ = 0;
  std::vector<std::pair<SessionId, std::uint8_t>> route_targets_;
  std::uint64_t publishing_conn_ = 0;       // the connection whose PUBLISH is being routed
  std::vector<std::uint64_t> sink_paused_;  // connections paused until the sink drains
  std::vector<std::uint64_t> output_paused_;  // not read until their output drains (Tick)
  bool sink_wait_armed_ = false;
  // Store commits started and not yet finished, and finished so far: a queue read
  // that came back short is repeated once the commits it may have missed are done.
  std::uint64_t commits_in_flight_ = 0, commits_done_ = 0;
  std::vector<SessionId> refill_waiting_;
  bool expiry_running_ = false;

  // Metrics.
  Gauge *m_connections_, *m_sessions_, *m_subscriptions_, *m_queued_, *m_retained_;
  Counter *m_in_[3], *m_out_[3], *m_acl_denied_sub_, *m_acl_denied_pub_, *m_auth_failed_;
  Counter *m_protocol_errors_, *m_receipts_, *m_bad_receipts_, *m_flow_pauses_;
  Histogram* m_delivery_seconds_;
  MetricsRegistry* metrics_;
};

}  // namespace herald::mqtt
