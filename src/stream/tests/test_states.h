// Partition states used by the pipeline's tests: they plug in exactly as a
// decision module does (partition_state.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "stream/partition_state.h"

namespace herald::stream::testing {

// Counts the events applied to its partition. The count is its durable state.
class CountingState final : public PartitionState {
 public:
  std::uint64_t count() const { return count_; }

  Status Load(StateReader& r) override {
    auto v = r.Get("n");
    HERALD_RETURN_IF_ERROR(v.status());
    if (v->has_value() && !ByteReader(**v).Varint(&count_)) return Status::Corruption("bad count");
    return Status::Ok();
  }
  void OnEvent(AppliedEvent&) override {
    ++count_;
    changed_ = true;
  }
  void Checkpoint(CheckpointWriter& w) override {
    if (!changed_) return;
    std::string v;
    ByteWriter(&v).Varint(count_);
    w.Put("n", v);
    changed_ = false;
  }

 private:
  std::uint64_t count_ = 0;
  bool changed_ = false;
};

// A state that does nothing: the cost of a registered state.
class IdleState final : public PartitionState {
 public:
  Status Load(StateReader&) override { return Status::Ok(); }
  void OnEvent(AppliedEvent&) override {}
  void Checkpoint(CheckpointWriter&) override {}
};

// Durable timers, as the schedule will keep them. An app_open event with
// message_id "arm-<id>" and account_id "<due micros>" arms timer <id>; when it
// fires, the state hands `fire` an app_open event "fired-<id>" stamped with the
// clock, and applying that event retires the timer. Pending timers and the
// retired ones (with their firing times) are the durable state; pending ones are
// posted again after a restart (OnRecovered).
class TimerState final : public PartitionState {
 public:
  using Fire = std::function<void(Event)>;
  struct Retired {
    std::uint64_t id;
    Micros at;
  };
  // `ran(id)` is told each time a timer's callback finds it pending and fires it,
  // without any deduplication, so that a test can count double fires.
  TimerState(Fire fire, std::function<void(std::uint64_t)> ran)
      : fire_(std::move(fire)), ran_(std::move(ran)) {}

  const std::vector<Retired>& retired() const { return retired_; }
  size_t pending() const { return pending_.size(); }

  Status Load(StateReader& r) override {
    auto v = r.Get("timers");
    HERALD_RETURN_IF_ERROR(v.status());
    if (!v->has_value()) return Status::Ok();
    ByteReader in(**v);
    std::uint64_t n = 0, m = 0;
    bool ok = in.Varint(&n);
    for (std::uint64_t i = 0; ok && i < n; ++i) {
      std::uint64_t id;
      Pending t;
      ok = in.Varint(&id) && in.Zigzag(&t.due) && in.String(&t.user);
      pending_[id] = t;
    }
    ok = ok && in.Varint(&m);
    for (std::uint64_t i = 0; ok && i < m; ++i) {
      Retired x;
      ok = in.Varint(&x.id) && in.Zigzag(&x.at);
      retired_.push_back(x);
    }
    return ok && in.done() ? Status::Ok() : Status::Corruption("bad timers record");
  }
  void OnEvent(AppliedEvent& e) override {
    const std::string& m = e.event.message_id;
    if (m.rfind("arm-", 0) == 0) {
      std::uint64_t id = std::stoull(m.substr(4));
      Pending t{std::stoll(e.event.account_id), e.event.user_id};
      pending_[id] = t;
      changed_ = true;
      if (live_) Post(*live_, id, t);
    } else if (m.rfind("fired-", 0) == 0) {
      std::uint64_t id = std::stoull(m.substr(6));
      if (pending_.erase(id)) retired_.push_back({id, e.event.ts});
      changed_ = true;
    }
  }
  void Checkpoint(CheckpointWriter& w) override {
    if (!changed_) return;
    std::string v;
    ByteWriter out(&v);
    out.Varint(pending_.size());
    for (const auto& [id, t] : pending_) {
      out.Varint(id);
      out.Zigzag(t.due);
      out.String(t.user);
    }
    out.Varint(retired_.size());
    for (auto r : retired_) {
      out.Varint(r.id);
      out.Zigzag(r.at);
    }
    w.Put("timers", v);
    changed_ = false;
  }
  void OnRecovered(Partition& p) override {
    live_ = &p;
    for (const auto& [id, t] : pending_) Post(p, id, t);
  }

 private:
  struct Pending {
    Micros due = 0;
    std::string user;  // who armed it; the "fired" event is theirs
  };
  void Post(Partition& p, std::uint64_t id, const Pending& t) {
    p.PostAt(t.due, [this, id, user = t.user](Partition& part) {
      // Until its "fired" event is applied the timer stays pending; the platform
      // must not run it twice meanwhile (the test counts runs).
      if (!pending_.count(id)) return;
      if (ran_) ran_(id);
      Event e;
      e.tenant = "t";
      e.user_id = user;
      e.type = EventType::kAppOpen;
      e.ts = part.clock().Now();
      e.message_id = "fired-" + std::to_string(id);
      fire_(std::move(e));
    });
  }

  Fire fire_;
  std::function<void(std::uint64_t)> ran_;
  Partition* live_ = nullptr;
  std::map<std::uint64_t, Pending> pending_;
  std::vector<Retired> retired_;
  bool changed_ = false;
};

}  // namespace herald::stream::testing
