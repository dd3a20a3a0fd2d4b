#include "stream/event_codec.h"

#include <cstring>

namespace herald::stream {
namespace {

enum Flag : std::uint8_t {
  kHasAccount = 0x01,
  kHasMessage = 0x02,
  kHasCampaign = 0x04,
  kHasAttrs = 0x08,
  kHasLat = 0x10,
  kHasLng = 0x20,
  kHasItem = 0x40,
  kHasTags = 0x80,
};

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the event codec stores doubles by memcpy; byte-swap them on big-endian hosts");

void PutVarint(std::string* out, std::uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

void PutDouble(std::string* out, double d) {
  char buf[8];
  std::memcpy(buf, &d, 8);
  out->append(buf, 8);
}

// Reads from a byte range; every method returns false once the input runs out
// or is malformed, and keeps returning false afterwards.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool Byte(std::uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Varint(std::uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;  // more than 10 bytes
  }
  bool String(std::string* s) {
    std::uint64_t n;
    if (!Varint(&n) || n > in_.size()) return false;
    s->assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool Double(double* d) {
    if (in_.size() < 8) return false;
    std::memcpy(d, in_.data(), 8);
    in_.remove_prefix(8);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

Status Corrupt(const char* why) {
  return Status::Corruption(std::string("undecodable event: ") + why);
}

}  // namespace

void EncodeEvent(const Event& e, std::string* out) {
  std::uint8_t flags =
      (e.account_id.empty() ? 0 : kHasAccount) | (e.message_id.empty() ? 0 : kHasMessage) |
      (e.campaign_id.empty() ? 0 : kHasCampaign) | (e.attrs.empty() ? 0 : kHasAttrs) |
      (e.lat ? kHasLat : 0) | (e.lng ? kHasLng : 0) | (e.item.empty() ? 0 : kHasItem) |
      (e.tags.empty() ? 0 : kHasTags);
  out->push_back(static_cast<char>(kEventEncodingVersion));
  out->push_back(static_cast<char>(e.type));
  // zigzag, so that (invalid but representable) negative times stay short
  auto ts = static_cast<std::uint64_t>(e.ts);
  PutVarint(out, (ts << 1) ^ static_cast<std::uint64_t>(e.ts >> 63));
  out->push_back(static_cast<char>(flags));
  PutString(out, e.tenant);
  PutString(out, e.user_id);
  if (flags & kHasAccount) PutString(out, e.account_id);
  if (flags & kHasMessage) PutString(out, e.message_id);
  if (flags & kHasCampaign) PutString(out, e.campaign_id);
  if (flags & kHasAttrs) PutString(out, e.attrs);
  if (flags & kHasLat) PutDouble(out, *e.lat);
  if (flags & kHasLng) PutDouble(out, *e.lng);
  if (flags & kHasItem) PutString(out, e.item);
  if (flags & kHasTags) {
    PutVarint(out, e.tags.size());
    for (const std::string& t : e.tags) PutString(out, t);
  }
}

std::string EncodeEvent(const Event& e) {
  std::string out;
  out.reserve(32 + e.tenant.size() + e.user_id.size() + e.account_id.size() + e.message_id.size() +
              e.campaign_id.size() + e.attrs.size());
  EncodeEvent(e, &out);
  return out;
}

Status DecodeEvent(std::string_view bytes, Event* e) {
  Reader r(bytes);
  std::uint8_t version, type, flags;
  std::uint64_t ts;
  if (!r.Byte(&version)) return Corrupt("empty");
  if (version != kEventEncodingVersion) {
    return Status::Corruption("undecodable event: unknown encoding version " +
                              std::to_string(version));
  }
  if (!r.Byte(&type) || !r.Varint(&ts) || !r.Byte(&flags)) return Corrupt("truncated header");
  if (type >= kEventTypeCount) return Corrupt("unknown event type");
  e->type = static_cast<EventType>(type);
  e->ts = static_cast<Micros>((ts >> 1) ^ (~(ts & 1) + 1));
  auto optional = [&](std::uint8_t flag, std::string* s) {
    if (flags & flag) return r.String(s);
    s->clear();
    return true;
  };
  bool ok = r.String(&e->tenant) && r.String(&e->user_id) &&
            optional(kHasAccount, &e->account_id) && optional(kHasMessage, &e->message_id) &&
            optional(kHasCampaign, &e->campaign_id) && optional(kHasAttrs, &e->attrs);
  double lat = 0, lng = 0;
  ok = ok && (!(flags & kHasLat) || r.Double(&lat)) && (!(flags & kHasLng) || r.Double(&lng));
  e->lat = flags & kHasLat ? std::optional<double>(lat) : std::nullopt;
  e->lng = flags & kHasLng ? std::optional<double>(lng) : std::nullopt;
  ok = ok && optional(kHasItem, &e->item);
  e->tags.clear();
  if (ok && (flags & kHasTags)) {
    std::uint64_t n = 0;
    ok = r.Varint(&n) && n <= bytes.size();
    for (std::uint64_t i = 0; ok && i < n; ++i) ok = r.String(&e->tags.emplace_back());
  }
  if (!ok) return Corrupt("truncated");
  if (!r.done()) return Corrupt("trailing bytes");
  return Status::Ok();
}

Result<Event> DecodeEvent(std::string_view bytes) {
  Event e;
  HERALD_RETURN_IF_ERROR(DecodeEvent(bytes, &e));
  return e;
}

}  // namespace herald::stream
