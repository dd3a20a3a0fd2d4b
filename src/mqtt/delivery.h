// What the gateway offers the engine (Deliver) and reports upward (EventSink).
//
// The engine calls Gateway::Deliver() to push one message to every device of a
// user; the gateway reports outcomes, presence and device receipts to an EventSink
// that a higher module (the event pipeline) implements.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.h"
#include "core/status.h"

namespace herald::mqtt {

// One push to one user: published at QoS 1 on the user's topic "u/<user_id>".
struct PushMessage {
  std::string tenant;
  std::string user_id;
  std::string message_id;
  std::string payload;     // JSON document the device receives
  Micros expires_at = 0;   // 0: the gateway's default TTL applies
  std::string account_id;  // the publishing account and campaign, carried into the
  std::string campaign_id; // outcome events (may be empty)
};

enum class DeliveryOutcome {
  kDelivered,  // at least one device acknowledged it (PUBACK)
  kQueued,     // no device online; stored for the user's persistent sessions
  kExpired,    // its expiry passed before any device took it
  kRefused,    // no device of the user has a session subscribed to its topic
};
const char* DeliveryOutcomeName(DeliveryOutcome o);

// Called once per Deliver(), on the gateway's event loop; must not block.
using DeliveryCallback = std::function<void(DeliveryOutcome)>;

// An event the gateway observed. `type` is one of: delivered, queued, expired,
// refused (outcomes of a Deliver), online, offline (presence), or a device receipt:
// opened, clicked, dismissed, not_interested, complaint, converted. Outcomes carry
// the push's account and campaign, so that a delivered event applied before its
// sent event still counts against the right account.
struct GatewayEvent {
  std::string tenant;
  std::string user_id;
  std::string device_id;   // empty for outcomes of a Deliver
  std::string type;
  std::string message_id;  // empty for presence
  std::string account_id;  // outcomes only; may be empty
  std::string campaign_id; // outcomes only; may be empty
  Micros ts = 0;
  std::string article_id;  // a receipt naming a digest's article; may be empty
};

// Implemented by the event pipeline. Called on the gateway's event loop: an
// implementation hands the event off (queues it), never blocks and never drops it.
class EventSink {
 public:
  using Done = std::function<void(Status)>;
  virtual ~EventSink() = default;
  // Takes `event`. `done` (may be null) runs once, on any thread, when the event
  // is durable in the event log or could not be stored. Returns false when the
  // sink is above its high-water mark: the caller should stop reading the input
  // that produces events (a device's receipts) until NotifyWhenDrained fires.
  virtual bool OnGatewayEvent(GatewayEvent event, Done done = nullptr) = 0;
  // Runs `fn` once, on any thread, when the sink is back below its low-water
  // mark (at once if it already is).
  virtual void NotifyWhenDrained(std::function<void()> fn) = 0;
};

}  // namespace herald::mqtt
