// POST /v1/users: the body parser and the profile patch's log encoding.
#include <simdjson.h>

#include <cmath>
#include <cstring>

#include "core/bytes.h"
#include "core/ids.h"
#include "core/time_format.h"
#include "profile/profile_store.h"
#include "stream/timezones.h"

namespace herald::profile {

namespace {
using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr std::uint8_t kPatchVersion = 1;

struct FieldSpec {
  const char* name;
  ProfilePatch::Field field;
};
constexpr FieldSpec kFields[] = {
    {"name", ProfilePatch::kName},         {"age", ProfilePatch::kAge},
    {"gender", ProfilePatch::kGender},     {"region", ProfilePatch::kRegion},
    {"city", ProfilePatch::kCity},         {"language", ProfilePatch::kLanguage},
    {"device", ProfilePatch::kDevice},     {"os", ProfilePatch::kOs},
    {"occupation", ProfilePatch::kOccupation}, {"registered_at", ProfilePatch::kRegisteredAt},
    {"ltv", ProfilePatch::kLtv},           {"friends", ProfilePatch::kFriends},
    {"groups", ProfilePatch::kGroups},     {"group_features", ProfilePatch::kGroupFeatures},
};

std::string* TextOf(ProfilePatch& p, ProfilePatch::Field f) {
  switch (f) {
    case ProfilePatch::kName: return &p.name;
    case ProfilePatch::kGender: return &p.gender;
    case ProfilePatch::kRegion: return &p.region;
    case ProfilePatch::kCity: return &p.city;
    case ProfilePatch::kLanguage: return &p.language;
    case ProfilePatch::kDevice: return &p.device;
    case ProfilePatch::kOs: return &p.os;
    case ProfilePatch::kOccupation: return &p.occupation;
    default: return nullptr;
  }
}

Status Bad(const std::string& where, const char* what) { return Status::InvalidArgument(where + ": " + what); }

Status ParseField(ProfilePatch& p, ProfilePatch::Field f, element v, const std::string& where) {
  p.given |= 1u << f;
  if (v.is_null()) {
    p.cleared |= 1u << f;
    return Status::Ok();
  }
  if (std::string* text = TextOf(p, f)) {
    std::string_view s;
    if (v.get(s)) return Bad(where, "must be a string");
    if (s.size() > kMaxTextBytes) return Bad(where, "must be at most 128 bytes");
    text->assign(s);
    return Status::Ok();
  }
  switch (f) {
    case ProfilePatch::kAge: {
      std::int64_t a;
      if (v.get(a) || a < 0 || a > 150) return Bad(where, "must be an integer between 0 and 150");
      p.age = static_cast<int>(a);
      return Status::Ok();
    }
    case ProfilePatch::kFriends: {
      std::int64_t n;
      if (v.get(n) || n < 0 || n > 100'000'000) return Bad(where, "must be an integer between 0 and 100000000");
      p.friends = static_cast<std::uint32_t>(n);
      return Status::Ok();
    }
    case ProfilePatch::kLtv: {
      double d;
      if (v.get(d) || !std::isfinite(d) || d < 0 || d > 1e15) return Bad(where, "must be a number between 0 and 1e15");
      p.ltv = d;
      return Status::Ok();
    }
    case ProfilePatch::kRegisteredAt: {
      std::string_view s;
      double secs;
      if (!v.get(s)) {
        auto t = ParseIsoTime(s);
        if (!t.ok()) return Status::InvalidArgument(where + ": " + t.status().message());
        p.registered_at = *t;
      } else if (!v.get(secs) && secs >= 946684800 && secs < 4102444800) {
        p.registered_at = std::llround(secs * 1e6);
      } else {
        return Bad(where, "must be an ISO-8601 time with a zone or unix seconds (2000-2100)");
      }
      return Status::Ok();
    }
    case ProfilePatch::kGroups: {
      simdjson::dom::array arr;
      if (v.get(arr)) return Bad(where, "must be an array of group ids");
      for (element g : arr) {
        std::string_view s;
        if (g.get(s) || s.empty() || s.size() > kMaxTextBytes) return Bad(where, "must be an array of group ids (1 to 128 bytes)");
        if (p.groups.size() == kMaxGroups) return Bad(where, "has more than 32 groups");
        p.groups.emplace_back(s);
      }
      return Status::Ok();
    }
    case ProfilePatch::kGroupFeatures: {
      simdjson::dom::object obj;
      if (v.get(obj)) return Bad(where, "must be an object of numbers");
      for (auto kv : obj) {
        double d;
        if (kv.value.get(d) || !std::isfinite(d)) {
          return Status::InvalidArgument(where + "." + std::string(kv.key) + ": must be a number");
        }
        if (kv.key.size() > kMaxTextBytes) return Bad(where, "keys must be at most 128 bytes");
        if (p.group_features.size() == kMaxGroupFeatures) return Bad(where, "has more than 16 features");
        p.group_features.emplace_back(std::string(kv.key), d);
      }
      return Status::Ok();
    }
    default: return Bad(where, "unsupported");
  }
}

Status ParseProfile(element v, const std::string& where, ProfilePatch* p) {
  simdjson::dom::object obj;
  if (v.get(obj)) return Bad(where, "must be an object");
  for (auto kv : obj) {
    const FieldSpec* spec = nullptr;
    for (const auto& s : kFields) {
      if (kv.key == s.name) spec = &s;
    }
    const std::string field = where + "." + std::string(kv.key);
    if (!spec) {
      return Status::InvalidArgument(field + ": unknown field (profile fields: name, age, gender, region, city, "
                                             "language, device, os, occupation, registered_at, ltv, friends, groups, "
                                             "group_features)");
    }
    if (p->given & (1u << spec->field)) return Bad(field, "given twice");
    HERALD_RETURN_IF_ERROR(ParseField(*p, spec->field, kv.value, field));
  }
  return Status::Ok();
}

}  // namespace

std::string EncodePatch(const ProfilePatch& p) {
  std::string out;
  ByteWriter w(&out);
  w.Byte(kPatchVersion);
  w.Varint(p.given);
  w.Varint(p.cleared);
  for (int f = 0; f < ProfilePatch::kFieldCount; ++f) {
    const auto field = static_cast<ProfilePatch::Field>(f);
    if (!p.Has(field) || (p.cleared & (1u << f))) continue;
    if (const std::string* s = TextOf(const_cast<ProfilePatch&>(p), field)) {
      w.String(*s);
      continue;
    }
    switch (field) {
      case ProfilePatch::kAge: w.Varint(static_cast<std::uint64_t>(p.age)); break;
      case ProfilePatch::kFriends: w.Varint(p.friends); break;
      case ProfilePatch::kLtv: w.Fixed(p.ltv); break;
      case ProfilePatch::kRegisteredAt: w.Zigzag(p.registered_at); break;
      case ProfilePatch::kGroups:
        w.Varint(p.groups.size());
        for (const auto& g : p.groups) w.String(g);
        break;
      case ProfilePatch::kGroupFeatures:
        w.Varint(p.group_features.size());
        for (const auto& [k, v] : p.group_features) {
          w.String(k);
          w.Fixed(v);
        }
        break;
      default: break;
    }
  }
  return out;
}

Status DecodePatch(std::string_view bytes, ProfilePatch* p) {
  ByteReader r(bytes);
  std::uint8_t version = 0;
  std::uint64_t given = 0, cleared = 0;
  if (!r.Byte(&version) || version != kPatchVersion || !r.Varint(&given) || !r.Varint(&cleared) ||
      given >= (1u << ProfilePatch::kFieldCount) || (cleared & ~given)) {
    return Status::Corruption("undecodable profile patch header");
  }
  *p = ProfilePatch{};
  p->given = static_cast<std::uint32_t>(given);
  p->cleared = static_cast<std::uint32_t>(cleared);
  bool ok = true;
  for (int f = 0; ok && f < ProfilePatch::kFieldCount; ++f) {
    const auto field = static_cast<ProfilePatch::Field>(f);
    if (!p->Has(field) || (p->cleared & (1u << f))) continue;
    if (std::string* s = TextOf(*p, field)) {
      ok = r.String(s);
      continue;
    }
    std::uint64_t n = 0;
    switch (field) {
      case ProfilePatch::kAge:
        ok = r.Varint(&n) && n <= 150;
        p->age = static_cast<int>(n);
        break;
      case ProfilePatch::kFriends:
        ok = r.Varint(&n);
        p->friends = static_cast<std::uint32_t>(n);
        break;
      case ProfilePatch::kLtv: ok = r.Fixed(&p->ltv); break;
      case ProfilePatch::kRegisteredAt: ok = r.Zigzag(&p->registered_at); break;
      case ProfilePatch::kGroups:
        ok = r.Varint(&n) && n <= kMaxGroups;
        for (std::uint64_t i = 0; ok && i < n; ++i) ok = r.String(&p->groups.emplace_back());
        break;
      case ProfilePatch::kGroupFeatures:
        ok = r.Varint(&n) && n <= kMaxGroupFeatures;
        for (std::uint64_t i = 0; ok && i < n; ++i) {
          auto& kv = p->group_features.emplace_back();
          ok = r.String(&kv.first) && r.Fixed(&kv.second);
        }
        break;
      default: ok = false;
    }
  }
  if (!ok || !r.done()) return Status::Corruption("undecodable profile patch");
  return Status::Ok();
}

Result<std::vector<stream::UserUpdate>> ParseUsers(std::string_view body, std::string_view tenant,
                                                   size_t max_users) {
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string text(body);
  element root;
  if (auto err = parser.parse(text).get(root)) {
    return Status::InvalidArgument(std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::object top;
  if (root.get(top)) return Status::InvalidArgument("the body must be an object {\"users\":[...]}");
  simdjson::dom::array users;
  bool have = false;
  for (auto kv : top) {
    if (kv.key != "users") return Status::InvalidArgument(std::string(kv.key) + ": unknown field");
    if (kv.value.get(users)) return Status::InvalidArgument("users: must be an array");
    have = true;
  }
  if (!have) return Status::InvalidArgument("users: required array");
  if (users.size() > max_users) {
    return Status::InvalidArgument("users: at most " + std::to_string(max_users) + " per request");
  }
  std::vector<stream::UserUpdate> out;
  out.reserve(users.size());
  size_t i = 0;
  for (element u : users) {
    std::string where("users[");
    where += std::to_string(i++);
    where += ']';
    simdjson::dom::object obj;
    if (u.get(obj)) return Bad(where, "must be an object");
    stream::UserUpdate up;
    up.tenant.assign(tenant);
    bool has_id = false;
    for (auto kv : obj) {
      if (kv.key == "id") {
        std::string_view id;
        if (kv.value.get(id)) return Bad(where + ".id", "must be a string");
        if (Status s = ValidateId(where + ".id", id); !s.ok()) return s;
        up.user_id.assign(id);
        has_id = true;
      } else if (kv.key == "tz") {
        std::string_view tz;
        if (kv.value.get(tz)) return Bad(where + ".tz", "must be a string");
        if (!stream::ValidTimeZone(std::string(tz))) {
          return Status::InvalidArgument(where + ".tz: unknown time zone " + std::string(tz));
        }
        up.tz.emplace(tz);
      } else if (kv.key == "profile") {
        ProfilePatch p;
        HERALD_RETURN_IF_ERROR(ParseProfile(kv.value, where + ".profile", &p));
        up.profile = EncodePatch(p);
      } else {
        return Status::InvalidArgument(where + "." + std::string(kv.key) + ": unknown field (id, tz, profile)");
      }
    }
    if (!has_id) return Bad(where + ".id", "required string");
    out.push_back(std::move(up));
  }
  return out;
}

}  // namespace herald::profile
