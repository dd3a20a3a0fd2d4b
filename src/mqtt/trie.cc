#include "mqtt/trie.h"

namespace herald::mqtt {

namespace {
// Lets children be found by string_view without building a std::string.
struct LevelHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
}  // namespace

struct SubscriptionTrie::Node {
  std::unordered_map<std::string, std::unique_ptr<Node>, LevelHash, std::equal_to<>> children;
  // Subscribers whose filter ends at this node. Usually one or two entries.
  std::vector<std::pair<SessionId, std::uint8_t>> subscribers;
  bool empty() const { return children.empty() && subscribers.empty(); }
};

SubscriptionTrie::SubscriptionTrie() : root_(std::make_unique<Node>()) {}
SubscriptionTrie::~SubscriptionTrie() = default;

namespace {

// Splits off the first level: "a/b/c" -> ("a", "b/c", true); "a" -> ("a", "", false).
std::string_view NextLevel(std::string_view* rest, bool* more) {
  size_t slash = rest->find('/');
  std::string_view level = rest->substr(0, slash);
  *more = slash != std::string_view::npos;
  *rest = *more ? rest->substr(slash + 1) : std::string_view();
  return level;
}

}  // namespace

bool SubscriptionTrie::Insert(std::string_view filter, SessionId session, std::uint8_t qos) {
  Node* node = root_.get();
  std::string_view rest = filter;
  for (bool more = true; more;) {
    std::string_view level = NextLevel(&rest, &more);
    auto& child = node->children[std::string(level)];
    if (!child) child = std::make_unique<Node>();
    node = child.get();
  }
  for (auto& [s, q] : node->subscribers) {
    if (s == session) {
      q = qos;
      return false;
    }
  }
  node->subscribers.emplace_back(session, qos);
  ++size_;
  return true;
}

bool SubscriptionTrie::Remove(std::string_view filter, SessionId session) {
  // Walk down remembering the path so that empty nodes can be pruned on the way up.
  std::vector<std::pair<Node*, std::string>> path;
  Node* node = root_.get();
  std::string_view rest = filter;
  for (bool more = true; more;) {
    std::string level(NextLevel(&rest, &more));
    auto it = node->children.find(level);
    if (it == node->children.end()) return false;
    path.emplace_back(node, std::move(level));
    node = it->second.get();
  }
  auto& subs = node->subscribers;
  for (size_t i = 0; i < subs.size(); ++i) {
    if (subs[i].first != session) continue;
    subs[i] = subs.back();
    subs.pop_back();
    --size_;
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      auto child = it->first->children.find(it->second);
      if (!child->second->empty()) break;
      it->first->children.erase(child);
    }
    return true;
  }
  return false;
}

void SubscriptionTrie::Match(std::string_view topic,
                             const std::function<void(SessionId, std::uint8_t)>& fn) const {
  MatchNode(root_.get(), topic, true, !topic.empty() && topic[0] == '$', fn);
}

void SubscriptionTrie::MatchNode(const Node* node, std::string_view rest, bool first_level,
                                 bool dollar,
                                 const std::function<void(SessionId, std::uint8_t)>& fn) const {
  bool more;
  std::string_view level = NextLevel(&rest, &more);
  const bool wildcards_ok = !(first_level && dollar);
  // "#" matches this level and everything below, including the parent level itself
  // ("sport/#" matches "sport"), which is handled where the parent ends.
  if (wildcards_ok) {
    if (auto it = node->children.find("#"); it != node->children.end()) {
      for (const auto& [s, q] : it->second->subscribers) fn(s, q);
    }
  }
  auto visit = [&](const Node* child) {
    if (more) {
      MatchNode(child, rest, false, dollar, fn);
      return;
    }
    for (const auto& [s, q] : child->subscribers) fn(s, q);
    if (auto h = child->children.find("#"); h != child->children.end()) {
      for (const auto& [s, q] : h->second->subscribers) fn(s, q);
    }
  };
  if (auto it = node->children.find(level); it != node->children.end()) {
    visit(it->second.get());
  }
  if (wildcards_ok) {
    if (auto it = node->children.find("+"); it != node->children.end()) visit(it->second.get());
  }
}

}  // namespace herald::mqtt
