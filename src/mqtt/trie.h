// SubscriptionTrie: the subscription index, a trie over topic levels.
//
// Each node is one level; "+" and "#" are ordinary children with special meaning
// at match time. Matching walks only the branches a topic can reach, so its cost
// depends on the topic's depth and the wildcards on its path, not on the number of
// subscriptions: one topic per device (the push pattern) stays O(levels) with
// millions of subscriptions.
//
// Not thread-safe: lives on the broker's event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace herald::mqtt {

using SessionId = std::uint64_t;

class SubscriptionTrie {
 public:
  SubscriptionTrie();
  ~SubscriptionTrie();

  // Adds or replaces (same session, same filter) a subscription. Returns true when
  // it was new.
  bool Insert(std::string_view filter, SessionId session, std::uint8_t qos);
  // Removes a subscription. Returns true when it existed.
  bool Remove(std::string_view filter, SessionId session);

  // Calls fn(session, granted qos) for every subscription whose filter matches
  // `topic`. A session with several matching filters is reported once per filter.
  // Topics beginning with '$' are not matched by filters beginning with a wildcard
  // (MQTT-4.7.2-1).
  void Match(std::string_view topic,
             const std::function<void(SessionId, std::uint8_t)>& fn) const;

  size_t size() const { return size_; }

 private:
  struct Node;
  void MatchNode(const Node* node, std::string_view rest, bool first_level, bool dollar,
                 const std::function<void(SessionId, std::uint8_t)>& fn) const;

  std::unique_ptr<Node> root_;
  size_t size_ = 0;
};

}  // namespace herald::mqtt
