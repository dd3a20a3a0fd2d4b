#include "model/push_features.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "model/send_time.h"

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

namespace {

// Hashes "field=value" without allocating for the usual short names.
class Hasher {
 public:
  Hasher(unsigned bits, std::vector<Feature>* out) : bits_(bits), out_(out) {}
  void Add(std::string_view field, std::string_view a, std::string_view sep = {}, std::string_view b = {}) {
    const size_t n = field.size() + 1 + a.size() + sep.size() + b.size();
    char stack[160];
    std::string heap;
    char* p = stack;
    if (n > sizeof(stack)) {
      heap.resize(n);
      p = heap.data();
    }
    char* w = p;
    auto put = [&](std::string_view s) {
      std::memcpy(w, s.data(), s.size());
      w += s.size();
    };
    put(field);
    *w++ = '=';
    put(a);
    put(sep);
    put(b);
    out_->push_back({HashFeature(std::string_view(p, n), bits_), 1.0f});
  }

 private:
  unsigned bits_;
  std::vector<Feature>* out_;
};

std::string_view Small(int v, char (&buf)[8]) {
  if (v < 0) return "?";
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string_view(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace

void AppendUserFeatures(const PushContext& c, unsigned bits, std::vector<Feature>* out) {
  Hasher h(bits, out);
  char hb[8], db[8];
  const std::string_view hour = Small(c.local_hour, hb), day = Small(c.weekday, db);
  h.Add("class", c.user_class);
  h.Add("hour", hour);
  h.Add("weekday", day);
  h.Add("hour_x_weekday", hour, "/", day);
  h.Add("device", c.device);
  h.Add("network", c.network);
  for (const auto& tag : c.tags) h.Add("tag", tag);
  for (std::uint64_t k : c.tag_keys) {
    char kb[24];
    auto r = std::to_chars(kb, kb + sizeof(kb), k, 16);
    h.Add("tag", std::string_view(kb, static_cast<size_t>(r.ptr - kb)));
  }
  for (const auto& e : c.experiment) h.Add("exp", e);
  if (c.activity_at_hour >= 0) {
    // Buckets of log2 activity: 0, (0,1], (1,2], (2,4], ...
    const int bucket = c.activity_at_hour <= 0 ? 0 : 1 + static_cast<int>(std::ceil(std::log2(1 + c.activity_at_hour)));
    char ab[8];
    h.Add("activity", Small(std::min(bucket, 12), ab));
  }
}

void AppendMessageFeatures(const PushContext& c, unsigned bits, std::vector<Feature>* out) {
  Hasher h(bits, out);
  h.Add("account", c.account_id);
  h.Add("form", c.form);
  const TitleTraits t = TraitsOf(c.title);
  h.Add("title_digits", t.digits ? "1" : "0");
  h.Add("title_emoji", t.emoji ? "1" : "0");
  h.Add("title_len", t.chars < 10 ? "<10" : t.chars < 20 ? "<20" : t.chars < 40 ? "<40" : "40+");
}

void AppendCrossFeatures(const PushContext& c, unsigned bits, std::vector<Feature>* out) {
  Hasher h(bits, out);
  char hb[8];
  const std::string_view hour = Small(c.local_hour, hb);
  h.Add("class_x_form", c.user_class, "/", c.form);
  h.Add("account_x_hour", c.account_id, "/", hour);
}

std::vector<Feature> PushFeatures(const PushContext& c, unsigned bits) {
  std::vector<Feature> out;
  out.reserve(16 + c.tags.size() + c.tag_keys.size() + c.experiment.size());
  AppendUserFeatures(c, bits, &out);
  AppendMessageFeatures(c, bits, &out);
  AppendCrossFeatures(c, bits, &out);
  return out;
}

PushScore ScorePush(const ModelRegistry* registry, const PushContext& c, unsigned bits) {
  PushScore s;
  std::shared_ptr<const ServedModel> served = registry ? registry->Served() : nullptr;
  if (served && served->learner) {
    s.version = served->version;
    s.features = PushFeatures(c, served->learner->config().bits);
    s.pctr = served->learner->Predict(s.features);
  } else {
    s.features = PushFeatures(c, bits);
    s.pctr = SourceOpenRate(c.local_hour < 0 ? 12 : c.local_hour);
  }
  return s;
}

void ScoreMessages(const ModelRegistry* registry, PushContext c, std::span<const MessageTraits> messages,
                   unsigned bits, std::vector<PushScore>* out) {
  out->clear();
  std::shared_ptr<const ServedModel> served = registry ? registry->Served() : nullptr;
  const bool model = served && served->learner;
  const unsigned b = model ? served->learner->config().bits : bits;
  std::vector<Feature> user;
  AppendUserFeatures(c, b, &user);
  for (const MessageTraits& m : messages) {
    PushScore& s = out->emplace_back();
    c.account_id.assign(m.account_id);
    c.form.assign(m.form);
    c.title.assign(m.title);
    s.features = user;
    AppendMessageFeatures(c, b, &s.features);
    AppendCrossFeatures(c, b, &s.features);
    if (model) {
      s.version = served->version;
      s.pctr = served->learner->Predict(s.features);
    } else {
      s.pctr = SourceOpenRate(c.local_hour < 0 ? 12 : c.local_hour);
    }
  }
}

}  // namespace herald::model
