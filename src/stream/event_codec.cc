#include "stream/event_codec.h"

#include "core/bytes.h"

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
enum ExtFlag : std::uint8_t {
  kHasCell = 0x01,
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
  ByteWriter w(out);
  w.Byte(kEventEncodingVersion);
  w.Byte(static_cast<std::uint8_t>(e.type));
  w.Zigzag(e.ts);  // so that (invalid but representable) negative times stay short
  w.Byte(flags);
  w.String(e.tenant);
  w.String(e.user_id);
  if (flags & kHasAccount) w.String(e.account_id);
  if (flags & kHasMessage) w.String(e.message_id);
  if (flags & kHasCampaign) w.String(e.campaign_id);
  if (flags & kHasAttrs) w.String(e.attrs);
  if (flags & kHasLat) w.Fixed(*e.lat);
  if (flags & kHasLng) w.Fixed(*e.lng);
  if (flags & kHasItem) w.String(e.item);
  if (flags & kHasTags) {
    w.Varint(e.tags.size());
    for (const std::string& t : e.tags) w.String(t);
  }
  // Version 2: extension flags, then the fields they announce.
  w.Byte(e.cell ? kHasCell : 0);
  if (e.cell) w.Fixed(e.cell);
}

std::string EncodeEvent(const Event& e) {
  std::string out;
  out.reserve(32 + e.tenant.size() + e.user_id.size() + e.account_id.size() + e.message_id.size() +
              e.campaign_id.size() + e.attrs.size());
  EncodeEvent(e, &out);
  return out;
}

Status DecodeEvent(std::string_view bytes, Event* e) {
  ByteReader r(bytes);
  std::uint8_t version, type, flags;
  if (!r.Byte(&version)) return Corrupt("empty");
  if (version != 1 && version != kEventEncodingVersion) {
    return Status::Corruption("undecodable event: unknown encoding version " +
                              std::to_string(version));
  }
  if (!r.Byte(&type) || !r.Zigzag(&e->ts) || !r.Byte(&flags)) return Corrupt("truncated header");
  if (type >= kEventTypeCount) return Corrupt("unknown event type");
  e->type = static_cast<EventType>(type);
  auto optional = [&](std::uint8_t flag, std::string* s) {
    if (flags & flag) return r.String(s);
    s->clear();
    return true;
  };
  bool ok = r.String(&e->tenant) && r.String(&e->user_id) &&
            optional(kHasAccount, &e->account_id) && optional(kHasMessage, &e->message_id) &&
            optional(kHasCampaign, &e->campaign_id) && optional(kHasAttrs, &e->attrs);
  double lat = 0, lng = 0;
  ok = ok && (!(flags & kHasLat) || r.Fixed(&lat)) && (!(flags & kHasLng) || r.Fixed(&lng));
  e->lat = flags & kHasLat ? std::optional<double>(lat) : std::nullopt;
  e->lng = flags & kHasLng ? std::optional<double>(lng) : std::nullopt;
  ok = ok && optional(kHasItem, &e->item);
  e->tags.clear();
  if (ok && (flags & kHasTags)) {
    std::uint64_t n = 0;
    ok = r.Varint(&n) && n <= bytes.size();
    for (std::uint64_t i = 0; ok && i < n; ++i) ok = r.String(&e->tags.emplace_back());
  }
  e->cell = 0;
  if (ok && version >= 2) {
    std::uint8_t ext = 0;
    ok = r.Byte(&ext);
    if (ok && (ext & ~kHasCell)) return Corrupt("unknown extension flags");
    if (ok && (ext & kHasCell)) ok = r.Fixed(&e->cell);
  }
  if (!ok) return Corrupt("truncated");
  if (!r.done()) return Corrupt("trailing bytes");
  return Status::Ok();
}

void EncodeIngestMark(const IngestMark& m, std::string* out) {
  ByteWriter w(out);
  w.Byte(kIngestMarkTag);
  w.String(m.tenant);
  w.String(m.key);
  w.String(m.digest);
}

Status DecodeIngestMark(std::string_view bytes, IngestMark* m) {
  ByteReader r(bytes);
  std::uint8_t tag;
  if (!r.Byte(&tag) || tag != kIngestMarkTag || !r.String(&m->tenant) || !r.String(&m->key) ||
      !r.String(&m->digest) || !r.done()) {
    return Status::Corruption("undecodable ingest mark");
  }
  return Status::Ok();
}

void EncodeUserUpdate(const UserUpdate& u, std::string* out) {
  ByteWriter w(out);
  w.Byte(kUserUpdateTag);
  w.String(u.tenant);
  w.String(u.user_id);
  w.Byte((u.tz ? 0x01 : 0x00) | (u.profile ? 0x02 : 0x00));
  if (u.tz) w.String(*u.tz);
  if (u.profile) w.String(*u.profile);
}

Status DecodeUserUpdate(std::string_view bytes, UserUpdate* u) {
  ByteReader r(bytes);
  std::uint8_t tag, fields;
  bool ok = r.Byte(&tag) && tag == kUserUpdateTag && r.String(&u->tenant) &&
            r.String(&u->user_id) && r.Byte(&fields) && (fields & ~0x03) == 0;
  u->tz.reset();
  u->profile.reset();
  if (ok && (fields & 0x01)) ok = r.String(&u->tz.emplace());
  if (ok && (fields & 0x02)) ok = r.String(&u->profile.emplace());
  if (!ok || !r.done()) return Status::Corruption("undecodable user update");
  return Status::Ok();
}

Result<Event> DecodeEvent(std::string_view bytes) {
  Event e;
  HERALD_RETURN_IF_ERROR(DecodeEvent(bytes, &e));
  return e;
}

}  // namespace herald::stream
