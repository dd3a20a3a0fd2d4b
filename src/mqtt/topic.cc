#include "mqtt/topic.h"

#include "mqtt/packet.h"

namespace herald::mqtt {

TopicLevels::Iterator::Iterator(std::string_view topic) : topic_(topic), begin_(0) {
  end_ = topic_.find('/');
  if (end_ == std::string_view::npos) end_ = topic_.size();
}

TopicLevels::Iterator& TopicLevels::Iterator::operator++() {
  if (end_ == topic_.size()) {
    begin_ = end_ = kDone;
    return *this;
  }
  begin_ = end_ + 1;
  end_ = topic_.find('/', begin_);
  if (end_ == std::string_view::npos) end_ = topic_.size();
  return *this;
}

bool ValidTopicName(std::string_view topic) {
  if (topic.empty() || topic.size() > kMaxStringSize) return false;
  // '+' and '#' are ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII, so a
  // byte search is exact.
  return topic.find_first_of("+#") == std::string_view::npos && ValidUtf8String(topic);
}

bool ValidTopicFilter(std::string_view filter) {
  if (filter.empty() || filter.size() > kMaxStringSize) return false;
  TopicLevels levels(filter);
  for (auto it = levels.begin(); it != levels.end(); ++it) {
    std::string_view level = *it;
    if (level.find_first_of("+#") == std::string_view::npos) continue;
    if (level == "+") continue;
    if (level == "#" && it.last()) continue;
    return false;
  }
  return ValidUtf8String(filter);
}

bool TopicMatches(std::string_view filter, std::string_view topic) {
  // MQTT-4.7.2-1: "$" topics are for the server; wildcards at the root skip them.
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  TopicLevels filter_levels(filter);
  TopicLevels topic_levels(topic);
  auto f = filter_levels.begin();
  auto t = topic_levels.begin();
  for (; f != filter_levels.end(); ++f, ++t) {
    // '#' matches its parent level too: "sport/#" matches "sport" (section 4.7.1.2).
    if (*f == "#") return true;
    if (t == topic_levels.end()) return false;
    if (*f != "+" && *f != *t) return false;
  }
  return t == topic_levels.end();
}

}  // namespace herald::mqtt
