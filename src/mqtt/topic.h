// MQTT topic names and topic filters (standard section 4.7). Pure functions; any
// thread may call them.
//
// A topic name is what a PUBLISH is sent to: levels separated by '/', no wildcards.
// A topic filter is what a SUBSCRIBE asks for: a topic name whose levels may also be
// '+' (exactly one level, possibly empty) or, as the last level only, '#' (the parent
// level and any number of children).
#pragma once

#include <cstddef>
#include <iterator>
#include <string_view>

namespace herald::mqtt {

// True when `s` is well-formed UTF-8 (MQTT-1.5.3-1: no overlongs, no surrogates
// U+D800..U+DFFF, nothing above U+10FFFF) without U+0000 (MQTT-1.5.3-2). Control
// characters and non-characters, which the standard only discourages, are accepted.
bool ValidUtf8String(std::string_view s);

// True when `topic` is 1..65535 bytes of valid UTF-8 without '+' or '#'
// (MQTT-4.7.3-1, MQTT-3.3.2-2).
bool ValidTopicName(std::string_view topic);

// True when `filter` is 1..65535 bytes of valid UTF-8 in which '+' only ever forms a
// whole level and '#' only the whole last level (MQTT-4.7.1-2, MQTT-4.7.1-3).
bool ValidTopicFilter(std::string_view filter);

// True when `filter` selects `topic`. Preconditions: ValidTopicFilter(filter) and
// ValidTopicName(topic); otherwise the answer is unspecified (but memory-safe).
// A filter starting with a wildcard does not match a topic starting with '$'
// (MQTT-4.7.2-1), so "#" does not see "$SYS/uptime".
bool TopicMatches(std::string_view filter, std::string_view topic);

// The '/'-separated levels of a topic name or filter, as views into it, without
// allocating. "a//b" yields "a", "", "b"; "/x" yields "", "x"; "" yields "".
// The viewed string must outlive the range and its iterators.
//
//   for (std::string_view level : TopicLevels("sport/tennis/+")) ...
class TopicLevels {
 public:
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string_view*;
    using reference = std::string_view;

    Iterator() = default;
    std::string_view operator*() const { return topic_.substr(begin_, end_ - begin_); }
    Iterator& operator++();
    Iterator operator++(int) {
      Iterator old = *this;
      ++*this;
      return old;
    }
    // True for the last level: nothing follows it.
    bool last() const { return end_ == topic_.size(); }
    bool operator==(const Iterator& o) const { return begin_ == o.begin_; }

   private:
    friend class TopicLevels;
    static constexpr size_t kDone = std::string_view::npos;
    explicit Iterator(std::string_view topic);
    std::string_view topic_;
    size_t begin_ = kDone;  // kDone once past the last level
    size_t end_ = kDone;
  };

  explicit TopicLevels(std::string_view topic) : topic_(topic) {}
  Iterator begin() const { return Iterator(topic_); }
  Iterator end() const { return Iterator(); }

 private:
  std::string_view topic_;
};

}  // namespace herald::mqtt
