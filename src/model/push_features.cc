#include "model/push_features.h"

#include <cmath>

namespace herald::model {

TitleTraits TraitsOf(std::string_view title) {
  TitleTraits t;
  for (size_t i = 0; i < title.size();) {
    const unsigned char c = static_cast<unsigned char>(title[i]);
    std::uint32_t cp = c;
    size_t len = 1;
    if (c >= 0xf0 && i + 3 < title.size()) {
      len = 4;
      cp = ((c & 0x07u) << 18) | ((title[i + 1] & 0x3fu) << 12) | ((title[i + 2] & 0x3fu) << 6) | (title[i + 3] & 0x3fu);
    } else if (c >= 0xe0 && i + 2 < title.size()) {
      len = 3;
      cp = ((c & 0x0fu) << 12) | ((title[i + 1] & 0x3fu) << 6) | (title[i + 2] & 0x3fu);
    } else if (c >= 0xc0 && i + 1 < title.size()) {
      len = 2;
      cp = ((c & 0x1fu) << 6) | (title[i + 1] & 0x3fu);
    }
    if (cp >= '0' && cp <= '9') t.digits = true;
    // Emoji blocks: pictographs, emoticons, transport, supplemental symbols, dingbats.
    if ((cp >= 0x1f300 && cp <= 0x1faff) || (cp >= 0x2600 && cp <= 0x27bf)) t.emoji = true;
    ++t.chars;
    i += len;
  }
  return t;
}

std::vector<Feature> PushFeatures(const PushContext& c, unsigned bits) {
  std::vector<Feature> out;
  auto add = [&](std::string_view field, std::string_view value) {
    std::string key(field);
    key.push_back('=');
    key.append(value);
    out.push_back({HashFeature(key, bits), 1.0f});
  };
  const std::string hour = c.local_hour >= 0 ? std::to_string(c.local_hour) : "?";
  const std::string day = c.weekday >= 0 ? std::to_string(c.weekday) : "?";
  add("class", c.user_class);
  add("account", c.account_id);
  add("form", c.form);
  add("hour", hour);
  add("weekday", day);
  add("hour_x_weekday", hour + "/" + day);
  const TitleTraits t = TraitsOf(c.title);
  add("title_digits", t.digits ? "1" : "0");
  add("title_emoji", t.emoji ? "1" : "0");
  add("title_len", t.chars < 10 ? "<10" : t.chars < 20 ? "<20" : t.chars < 40 ? "<40" : "40+");
  add("device", c.device);
  add("network", c.network);
  for (const auto& tag : c.tags) add("tag", tag);
  for (const auto& e : c.experiment) add("exp", e);
  add("class_x_form", c.user_class + "/" + c.form);
  add("account_x_hour", c.account_id + "/" + hour);
  if (c.activity_at_hour >= 0) {
    // Buckets of log2 activity: 0, (0,1], (1,2], (2,4], ...
    const int bucket = c.activity_at_hour <= 0 ? 0 : 1 + static_cast<int>(std::ceil(std::log2(1 + c.activity_at_hour)));
    add("activity", std::to_string(std::min(bucket, 12)));
  }
  return out;
}

}  // namespace herald::model
