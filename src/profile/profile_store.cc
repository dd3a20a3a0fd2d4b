#include "profile/profile_store.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "core/bytes.h"
#include "core/log.h"
#include "core/time_format.h"
#include "profile/privacy.h"
#include "profile/segment_ast.h"
#include "stream/event_codec.h"
#include "stream/features.h"
#include "stream/json_text.h"

namespace herald::profile {

namespace {

constexpr std::uint8_t kAge255 = 255;  // unknown age
constexpr std::uint32_t kNoFriends = std::numeric_limits<std::uint32_t>::max();
constexpr size_t kTextColumns = 7;  // segment fields kRegion..kOccupation
constexpr std::uint8_t kAttrsDirty = 1, kActivityDirty = 2;
constexpr std::uint8_t kRecordVersion = 1;

// Segment field -> text column (region, city, language, os, device, gender, occupation).
int TextColumn(int field) { return field >= kRegion && field <= kOccupation ? field - kRegion : -1; }
// Patch field -> text column.
int PatchColumn(ProfilePatch::Field f) {
  switch (f) {
    case ProfilePatch::kRegion: return kRegion - kRegion;
    case ProfilePatch::kCity: return kCity - kRegion;
    case ProfilePatch::kLanguage: return kLanguage - kRegion;
    case ProfilePatch::kOs: return kOs - kRegion;
    case ProfilePatch::kDevice: return kDevice - kRegion;
    case ProfilePatch::kGender: return kGender - kRegion;
    case ProfilePatch::kOccupation: return kOccupation - kRegion;
    default: return -1;
  }
}
const std::string& PatchText(const ProfilePatch& p, ProfilePatch::Field f) {
  switch (f) {
    case ProfilePatch::kRegion: return p.region;
    case ProfilePatch::kCity: return p.city;
    case ProfilePatch::kLanguage: return p.language;
    case ProfilePatch::kOs: return p.os;
    case ProfilePatch::kDevice: return p.device;
    case ProfilePatch::kGender: return p.gender;
    default: return p.occupation;
  }
}

std::uint32_t Key32(std::string_view name) { return static_cast<std::uint32_t>(stream::KeyOf(name)); }
std::uint32_t Seconds(Micros t) { return t <= 0 ? 0 : static_cast<std::uint32_t>(std::min<Micros>(t / kMicrosPerSecond, 0xffffffffLL)); }
Micros FromSeconds(std::uint32_t s) { return static_cast<Micros>(s) * kMicrosPerSecond; }

struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// Interned strings; code 0 is "" (unknown).
class Dict {
 public:
  Dict() { Intern(""); }
  std::uint32_t Intern(std::string_view s) {
    auto it = codes_.find(s);
    if (it != codes_.end()) return it->second;
    const auto code = static_cast<std::uint32_t>(text_.size());
    auto [pos, _] = codes_.emplace(std::string(s), code);
    text_.push_back(&pos->first);
    return code;
  }
  // The code of `s`, or -1 when no row has it.
  std::int64_t Find(std::string_view s) const {
    auto it = codes_.find(s);
    return it == codes_.end() ? std::int64_t{-1} : std::int64_t{it->second};
  }
  const std::string& Text(std::uint32_t code) const { return *text_[code]; }
  size_t Bytes() const {
    size_t b = text_.capacity() * sizeof(void*) + codes_.bucket_count() * sizeof(void*);
    for (const auto& [s, _] : codes_) b += 48 + s.capacity();
    return b;
  }

 private:
  std::unordered_map<std::string, std::uint32_t, KeyHash, std::equal_to<>> codes_;
  std::vector<const std::string*> text_;
};

struct Social {
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, double>> features;
};

using Bits = std::vector<std::uint64_t>;

void Set(Bits& b, std::uint32_t i) { b[i >> 6] |= std::uint64_t{1} << (i & 63); }

void AddSorted(std::vector<std::uint32_t>& list, std::uint32_t row) {
  auto it = std::lower_bound(list.begin(), list.end(), row);
  if (it == list.end() || *it != row) list.insert(it, row);
}
void RemoveSorted(std::vector<std::uint32_t>& list, std::uint32_t row) {
  auto it = std::lower_bound(list.begin(), list.end(), row);
  if (it != list.end() && *it == row) list.erase(it);
}
bool HasSorted(const std::vector<std::uint32_t>& list, std::uint32_t row) {
  return std::binary_search(list.begin(), list.end(), row);
}

}  // namespace

struct ProfileStore::Table {
  const ProfileConfig* cfg = nullptr;
  PartitionId partition = 0;

  std::unordered_map<std::string, std::uint32_t, KeyHash, std::equal_to<>> index;  // tenant \0 user
  std::vector<const std::string*> key;
  Dict tenants, text;
  std::vector<std::uint32_t> tenant;
  std::vector<std::uint8_t> cls;
  std::vector<std::uint32_t> cls_at, cls_until;  // the class holds in [at, until), unix seconds
  std::vector<std::uint8_t> age;
  std::array<std::vector<std::uint32_t>, kTextColumns> texts;
  std::vector<std::string> name;
  std::vector<std::uint32_t> registered, last_active, activity_ref, friends;
  std::vector<float> activity, ltv;
  std::vector<std::uint8_t> night;
  std::vector<std::uint32_t> active_events, reads, pays, shares, conversions;
  std::vector<std::array<std::uint32_t, stream::kTopInterests>> tag_key;
  std::vector<std::array<std::uint8_t, stream::kTopInterests>> tag_share;
  std::vector<std::uint64_t> cell;
  std::unordered_map<std::uint32_t, Social> social;                      // sparse, by row
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> follows;  // KeyOf(account) -> rows
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> members;  // KeyOf(group) -> rows
  std::vector<std::uint8_t> dirty;
  std::vector<std::uint32_t> dirty_rows;
  struct FollowOp {
    std::uint32_t row;
    std::uint64_t account;
    bool add;
  };
  std::vector<FollowOp> follow_ops;
  std::string probe;  // reused lookup key

  size_t rows() const { return key.size(); }

  void BuildKey(std::string_view t, std::string_view u) {
    probe.assign(t);
    probe.push_back('\0');
    probe.append(u);
  }
  std::int64_t Find(std::string_view t, std::string_view u) {
    BuildKey(t, u);
    auto it = index.find(probe);
    return it == index.end() ? std::int64_t{-1} : std::int64_t{it->second};
  }
  std::uint32_t FindOrAdd(std::string_view t, std::string_view u) {
    BuildKey(t, u);
    auto it = index.find(probe);
    if (it != index.end()) return it->second;
    return Add(probe);
  }
  // The event's user's row, created if new, found through the user's slot when
  // the features hold it.
  std::uint32_t RowOf(const stream::AppliedEvent& e) {
    std::uint32_t* slot = e.user.slots ? &e.user.slots->slot[0] : nullptr;
    if (slot && *slot) return *slot - 1;
    const std::uint32_t r = FindOrAdd(e.event.tenant, e.event.user_id);
    if (slot) *slot = r + 1;
    return r;
  }
  std::uint32_t Add(const std::string& k) {
    const auto row = static_cast<std::uint32_t>(key.size());
    auto [it, _] = index.emplace(k, row);
    key.push_back(&it->first);
    tenant.push_back(tenants.Intern(std::string_view(k).substr(0, k.find('\0'))));
    cls.push_back(static_cast<std::uint8_t>(UserClass::kLowFrequency));
    cls_at.push_back(0);
    cls_until.push_back(0);
    age.push_back(kAge255);
    for (auto& c : texts) c.push_back(0);
    name.emplace_back();
    registered.push_back(0);
    last_active.push_back(0);
    activity_ref.push_back(0);
    friends.push_back(kNoFriends);
    activity.push_back(0);
    ltv.push_back(std::numeric_limits<float>::quiet_NaN());
    night.push_back(0);
    active_events.push_back(0);
    reads.push_back(0);
    pays.push_back(0);
    shares.push_back(0);
    conversions.push_back(0);
    tag_key.push_back({});
    tag_share.push_back({});
    cell.push_back(0);
    dirty.push_back(0);
    return row;
  }
  void MarkDirty(std::uint32_t row, std::uint8_t what) {
    if (!dirty[row]) dirty_rows.push_back(row);
    dirty[row] |= what;
    cls_until[row] = 0;
  }
  std::string_view UserId(std::uint32_t row) const {
    const std::string& k = *key[row];
    return std::string_view(k).substr(k.find('\0') + 1);
  }

  ClassInputs Inputs(std::uint32_t r) const {
    ClassInputs in;
    in.registered = FromSeconds(registered[r]);
    in.last_active = FromSeconds(last_active[r]);
    in.activity = activity[r];
    in.activity_ref = FromSeconds(activity_ref[r]);
    in.night = night[r] / 255.0;
    in.active_events = active_events[r];
    in.pays = pays[r];
    in.shares = shares[r];
    in.conversions = conversions[r];
    in.ltv = std::isnan(ltv[r]) ? 0 : ltv[r];
    in.age = age[r] == kAge255 ? -1 : age[r];
    in.occupation = text.Text(texts[kOccupation - kRegion][r]);
    return in;
  }
  UserClass ClassAt(std::uint32_t r, Micros now) {
    const std::uint32_t s = Seconds(now);
    if (s >= cls_until[r] || s < cls_at[r]) {
      const Classified c = Classify(Inputs(r), *cfg, now);
      cls[r] = static_cast<std::uint8_t>(c.cls);
      cls_at[r] = s;
      cls_until[r] = std::max<std::uint32_t>(1, Seconds(c.until));
    }
    return static_cast<UserClass>(cls[r]);
  }

  // Behaviour, interests: copied from the features the event produced.
  void Sync(std::uint32_t r, const stream::UserFeatures& f) {
    using stream::EventType;
    last_active[r] = Seconds(f.last_active);
    std::uint64_t all = 0, late = 0;
    for (size_t h = 0; h < stream::kHoursPerWeek; ++h) {
      all += f.activity[h];
      const size_t hour = h % 24;
      if (hour >= 22 || hour <= 4) late += f.activity[h];
    }
    activity[r] = static_cast<float>(std::ldexp(static_cast<double>(all), f.activity_exp));
    activity_ref[r] = Seconds(f.decay_ref);
    night[r] = all ? static_cast<std::uint8_t>(std::lround(255.0 * static_cast<double>(late) / static_cast<double>(all))) : 0;
    std::uint32_t act = 0;
    for (size_t t = 0; t < stream::kEventTypeCount; ++t) {
      if (stream::IsActivity(static_cast<EventType>(t))) act += f.events_total[t];
    }
    active_events[r] = act;
    reads[r] = f.events_total[static_cast<size_t>(EventType::kRead)];
    pays[r] = f.events_total[static_cast<size_t>(EventType::kPay)];
    shares[r] = f.events_total[static_cast<size_t>(EventType::kShare)];
    conversions[r] = f.events_total[static_cast<size_t>(EventType::kConverted)];
    double total = 0;
    for (float w : f.tag_weight) total += std::max(0.0f, w);
    for (size_t i = 0; i < stream::kTopInterests; ++i) {
      tag_key[r][i] = f.tag_key[i] ? static_cast<std::uint32_t>(f.tag_key[i]) : 0;
      tag_share[r][i] = total > 0 && f.tag_key[i]
                            ? static_cast<std::uint8_t>(std::lround(255.0 * std::max(0.0f, f.tag_weight[i]) / total))
                            : 0;
    }
  }
  double TagShare(std::uint32_t r, std::uint32_t k) const {
    for (size_t i = 0; i < stream::kTopInterests; ++i) {
      if (tag_key[r][i] == k && tag_share[r][i]) return tag_share[r][i] / 255.0;
    }
    return 0;
  }

  void SetGroups(std::uint32_t r, std::vector<std::string> groups) {
    Social& s = social[r];
    for (const auto& g : s.groups) {
      auto it = members.find(stream::KeyOf(g));
      if (it != members.end()) RemoveSorted(it->second, r);
    }
    s.groups = std::move(groups);
    for (const auto& g : s.groups) AddSorted(members[stream::KeyOf(g)], r);
  }

  void ApplyPatch(std::uint32_t r, const ProfilePatch& p) {
    using F = ProfilePatch;
    for (int f = 0; f < F::kFieldCount; ++f) {
      const auto field = static_cast<F::Field>(f);
      if (!p.Has(field)) continue;
      const bool clear = p.cleared & (1u << f);
      if (const int col = PatchColumn(field); col >= 0) {
        texts[static_cast<size_t>(col)][r] = clear ? 0 : text.Intern(PatchText(p, field));
        continue;
      }
      switch (field) {
        case F::kName: name[r] = clear ? std::string() : p.name; break;
        case F::kAge: age[r] = clear ? kAge255 : static_cast<std::uint8_t>(p.age); break;
        case F::kRegisteredAt: registered[r] = clear ? 0 : Seconds(p.registered_at); break;
        case F::kLtv: ltv[r] = clear ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(p.ltv); break;
        case F::kFriends: friends[r] = clear ? kNoFriends : p.friends; break;
        case F::kGroups: SetGroups(r, clear ? std::vector<std::string>{} : p.groups); break;
        case F::kGroupFeatures: social[r].features = clear ? decltype(p.group_features){} : p.group_features; break;
        default: break;
      }
    }
    auto it = social.find(r);
    if (it != social.end() && it->second.groups.empty() && it->second.features.empty()) social.erase(it);
  }

  // Records.
  std::string EncodeAttributes(std::uint32_t r) const {
    std::string out;
    ByteWriter w(&out);
    w.Byte(kRecordVersion);
    w.String(name[r]);
    w.Byte(age[r]);
    for (const auto& c : texts) w.String(text.Text(c[r]));
    w.Varint(registered[r]);
    w.Byte(std::isnan(ltv[r]) ? 0 : 1);
    if (!std::isnan(ltv[r])) w.Fixed(static_cast<double>(ltv[r]));
    w.Varint(friends[r] == kNoFriends ? 0 : std::uint64_t{friends[r]} + 1);
    auto it = social.find(r);
    const Social empty;
    const Social& s = it == social.end() ? empty : it->second;
    w.Varint(s.groups.size());
    for (const auto& g : s.groups) w.String(g);
    w.Varint(s.features.size());
    for (const auto& [k, v] : s.features) {
      w.String(k);
      w.Fixed(v);
    }
    return out;
  }
  bool DecodeAttributes(std::uint32_t r, std::string_view bytes) {
    ByteReader rd(bytes);
    std::uint8_t version = 0, a = 0, has_ltv = 0;
    std::string s;
    if (!rd.Byte(&version) || version != kRecordVersion || !rd.String(&name[r]) || !rd.Byte(&a)) return false;
    age[r] = a;
    for (auto& c : texts) {
      if (!rd.String(&s)) return false;
      c[r] = text.Intern(s);
    }
    std::uint64_t reg = 0, fr = 0, n = 0;
    if (!rd.Varint(&reg) || !rd.Byte(&has_ltv)) return false;
    registered[r] = static_cast<std::uint32_t>(reg);
    double l = 0;
    if (has_ltv && !rd.Fixed(&l)) return false;
    ltv[r] = has_ltv ? static_cast<float>(l) : std::numeric_limits<float>::quiet_NaN();
    if (!rd.Varint(&fr) || !rd.Varint(&n) || n > kMaxGroups) return false;
    friends[r] = fr ? static_cast<std::uint32_t>(fr - 1) : kNoFriends;
    std::vector<std::string> groups(n);
    for (auto& g : groups) {
      if (!rd.String(&g)) return false;
    }
    if (!rd.Varint(&n) || n > kMaxGroupFeatures) return false;
    std::vector<std::pair<std::string, double>> features(n);
    for (auto& [k, v] : features) {
      if (!rd.String(&k) || !rd.Fixed(&v)) return false;
    }
    if (!rd.done()) return false;
    if (!groups.empty()) SetGroups(r, std::move(groups));
    if (!features.empty()) social[r].features = std::move(features);
    return true;
  }
  std::string EncodeActivity(std::uint32_t r) const {
    std::string out;
    ByteWriter w(&out);
    w.Byte(kRecordVersion);
    w.Varint(last_active[r]);
    w.Varint(activity_ref[r]);
    w.Fixed(activity[r]);
    w.Byte(night[r]);
    for (std::uint32_t v : {active_events[r], reads[r], pays[r], shares[r], conversions[r]}) w.Varint(v);
    for (size_t i = 0; i < stream::kTopInterests; ++i) {
      w.Fixed(tag_key[r][i]);
      w.Byte(tag_share[r][i]);
    }
    w.Fixed(cell[r]);
    return out;
  }
  bool DecodeActivity(std::uint32_t r, std::string_view bytes) {
    ByteReader rd(bytes);
    std::uint8_t version = 0;
    std::uint64_t la = 0, ref = 0;
    if (!rd.Byte(&version) || version != kRecordVersion || !rd.Varint(&la) || !rd.Varint(&ref) ||
        !rd.Fixed(&activity[r]) || !rd.Byte(&night[r])) {
      return false;
    }
    last_active[r] = static_cast<std::uint32_t>(la);
    activity_ref[r] = static_cast<std::uint32_t>(ref);
    for (std::vector<std::uint32_t>* col : {&active_events, &reads, &pays, &shares, &conversions}) {
      std::uint64_t v = 0;
      if (!rd.Varint(&v)) return false;
      (*col)[r] = static_cast<std::uint32_t>(v);
    }
    for (size_t i = 0; i < stream::kTopInterests; ++i) {
      if (!rd.Fixed(&tag_key[r][i]) || !rd.Byte(&tag_share[r][i])) return false;
    }
    return rd.Fixed(&cell[r]) && rd.done();
  }

  // Segment evaluation over the columns: one bitmap per predicate.
  struct Eval {
    Table& t;
    Micros now;
    size_t n;
    Bits Empty() const { return Bits((n + 63) / 64, 0); }
    template <typename Pred>
    Bits Scan(Pred pred) const {
      Bits b = Empty();
      for (std::uint32_t i = 0; i < n; ++i) {
        if (pred(i)) Set(b, i);
      }
      return b;
    }
    void Complement(Bits& b) const {
      for (auto& w : b) w = ~w;
      if (n % 64) b.back() &= (std::uint64_t{1} << (n % 64)) - 1;
    }
    double Number(int field, std::uint32_t i) const {
      switch (field) {
        case kAge: return t.age[i] == kAge255 ? NAN : t.age[i];
        case kFriends: return t.friends[i] == kNoFriends ? NAN : t.friends[i];
        case kReads: return t.reads[i];
        case kPays: return t.pays[i];
        case kShares: return t.shares[i];
        case kLtv: return t.ltv[i];
        default: return NAN;
      }
    }
    Bits Posting(const std::unordered_map<std::uint64_t, std::vector<std::uint32_t>>& lists,
                 std::string_view name) const {
      Bits b = Empty();
      auto it = lists.find(stream::KeyOf(name));
      if (it != lists.end()) {
        for (std::uint32_t r : it->second) {
          if (r < n) Set(b, r);
        }
      }
      return b;
    }
    Bits Run(const Segment::Node& node) const {
      using N = Segment::Node;
      switch (node.kind) {
        case N::kAnd:
        case N::kOr: {
          Bits a = Run(*node.children[0]);
          const Bits b = Run(*node.children[1]);
          for (size_t w = 0; w < a.size(); ++w) a[w] = node.kind == N::kAnd ? a[w] & b[w] : a[w] | b[w];
          return a;
        }
        case N::kNot: {
          Bits a = Run(*node.children[0]);
          Complement(a);
          return a;
        }
        case N::kTextIn:
        case N::kTextCmp: {
          const bool negate = node.kind == N::kTextCmp && node.cmp == Cmp::kNe;
          Bits b;
          if (node.field == kClass) {
            std::uint32_t mask = 0;
            for (const auto& v : node.values) {
              UserClass c;
              if (ParseClass(v, &c)) mask |= 1u << static_cast<unsigned>(c);
            }
            b = Scan([&](std::uint32_t i) { return (mask >> t.cls[i]) & 1; });
          } else {
            std::vector<std::uint32_t> codes;
            for (const auto& v : node.values) {
              const std::int64_t c = t.text.Find(v);
              if (c >= 0) codes.push_back(static_cast<std::uint32_t>(c));
            }
            const auto& col = t.texts[static_cast<size_t>(TextColumn(node.field))];
            if (codes.size() == 1) {
              const std::uint32_t c = codes[0];
              b = Scan([&](std::uint32_t i) { return col[i] == c; });
            } else if (codes.empty()) {
              b = Empty();
            } else {
              b = Scan([&](std::uint32_t i) {
                return std::find(codes.begin(), codes.end(), col[i]) != codes.end();
              });
            }
          }
          if (negate) Complement(b);
          return b;
        }
        case N::kNumberCmp: {
          const int f = node.field;
          return Scan([&](std::uint32_t i) {
            const double v = Number(f, i);
            return !std::isnan(v) && Compare(v, node.cmp, node.number);
          });
        }
        case N::kTimeCmp: {
          const auto& col = node.field == kLastActive ? t.last_active : t.registered;
          return Scan([&](std::uint32_t i) {
            return col[i] && Compare(static_cast<double>(now - FromSeconds(col[i])), node.cmp, node.number);
          });
        }
        case N::kTag: {
          const std::uint32_t k = Key32(node.values[0]);
          return Scan([&](std::uint32_t i) { return Compare(t.TagShare(i, k), node.cmp, node.number); });
        }
        case N::kFollows: return Posting(t.follows, node.values[0]);
        case N::kMember: return Posting(t.members, node.values[0]);
        case N::kNear: {
          const auto ranges = CoverDisc(node.lat, node.lng, node.number);
          return Scan([&](std::uint32_t i) {
            const std::uint64_t c = t.cell[i];
            if (!c) return false;
            auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                                       [](std::uint64_t v, const auto& r) { return v < r.first; });
            if (it == ranges.begin() || c > std::prev(it)->second) return false;
            return CellDistance(c, node.lat, node.lng) <= node.number;
          });
        }
      }
      return Empty();
    }
  };

  void RefreshClasses(std::uint32_t tenant_code, Micros now) {
    const std::uint32_t s = Seconds(now);
    for (std::uint32_t i = 0; i < rows(); ++i) {
      if ((cls_until[i] <= s || s < cls_at[i]) && tenant[i] == tenant_code) ClassAt(i, now);
    }
  }
};

namespace {

// The per-user view of a row, for Segment::Matches.
class RowView final : public ProfileView {
 public:
  RowView(ProfileStore::Table* t, std::uint32_t r, Micros now) : t_(t), r_(r), now_(now) {}
  std::string_view Text(int field) const override {
    if (field == kClass) return ClassName(t_->ClassAt(r_, now_));
    const int col = TextColumn(field);
    return col < 0 ? std::string_view() : std::string_view(t_->text.Text(t_->texts[static_cast<size_t>(col)][r_]));
  }
  double Number(int field) const override { return ProfileStore::Table::Eval{*t_, 0, t_->rows()}.Number(field, r_); }
  Micros Time(int field) const override {
    return FromSeconds(field == kLastActive ? t_->last_active[r_] : field == kRegistered ? t_->registered[r_] : 0);
  }
  double Tag(std::string_view tag) const override { return t_->TagShare(r_, Key32(tag)); }
  bool Follows(std::string_view account) const override {
    auto it = t_->follows.find(stream::KeyOf(account));
    return it != t_->follows.end() && HasSorted(it->second, r_);
  }
  bool Member(std::string_view group) const override {
    auto it = t_->members.find(stream::KeyOf(group));
    return it != t_->members.end() && HasSorted(it->second, r_);
  }
  bool Near(double lat, double lng, double meters) const override {
    return t_->cell[r_] && CellDistance(t_->cell[r_], lat, lng) <= meters;
  }

 private:
  ProfileStore::Table* t_;
  std::uint32_t r_;
  Micros now_;
};

}  // namespace

ProfileStore::ProfileStore(const ProfileConfig* classes, PartitionId p) : t_(std::make_unique<Table>()) {
  t_->cfg = classes;
  t_->partition = p;
}
ProfileStore::~ProfileStore() = default;

size_t ProfileStore::rows() const { return t_->rows(); }

size_t ProfileStore::MemoryBytes() const {
  const Table& t = *t_;
  const size_t n = t.key.capacity();
  // Per row: the columns, then the index entry (node, key string, bucket).
  size_t per_row = sizeof(void*) + 4 + 1 + 8 + 1 + kTextColumns * 4 + sizeof(std::string) + 4 * 4 + 4 * 2 + 1 +
                   5 * 4 + stream::kTopInterests * 5 + 8 + 1;
  size_t b = n * per_row;
  for (const auto& [k, _] : t.index) b += 32 + sizeof(std::string) + (k.capacity() > 15 ? k.capacity() + 1 : 0) + 8;
  for (const auto& s : t.name) b += s.capacity() > 15 ? s.capacity() + 1 : 0;
  for (const auto& [_, s] : t.social) {
    b += 64 + s.groups.capacity() * sizeof(std::string) + s.features.capacity() * 40;
  }
  for (const auto& [_, l] : t.follows) b += 48 + l.capacity() * 4;
  for (const auto& [_, l] : t.members) b += 48 + l.capacity() * 4;
  return b + t.text.Bytes() + t.tenants.Bytes();
}

bool ProfileStore::UserJson(std::string_view tenant, std::string_view user, std::string_view tz, Micros now,
                            std::string* out) {
  Table& t = *t_;
  const std::int64_t found = t.Find(tenant, user);
  if (found < 0) return false;
  const auto r = static_cast<std::uint32_t>(found);
  using stream::json::AppendString;
  auto str = [&](const char* k, std::string_view v, bool comma = true) {
    if (comma) out->push_back(',');
    AppendString(out, k);
    out->push_back(':');
    AppendString(out, v);
  };
  auto num = [&](const char* k, double v) {
    out->push_back(',');
    AppendString(out, k);
    out->push_back(':');
    stream::json::AppendNumber(out, v);
  };
  auto time = [&](const char* k, std::uint32_t s) {
    out->push_back(',');
    AppendString(out, k);
    out->append(s ? ":\"" + FormatIsoTime(FromSeconds(s)) + "\"" : ":null");
  };
  out->push_back('{');
  str("id", user, false);
  str("tz", tz);
  str("class", ClassName(t.ClassAt(r, now)));
  out->append(",\"profile\":{");
  size_t mark = out->size();
  auto sep = [&] {
    if (out->size() > mark) out->push_back(',');
  };
  if (!t.name[r].empty()) {
    sep();
    str("name", t.name[r], false);
  }
  if (t.age[r] != kAge255) {
    sep();
    out->append("\"age\":" + std::to_string(t.age[r]));
  }
  static const char* kTextNames[kTextColumns] = {"region", "city", "language", "os", "device", "gender", "occupation"};
  for (size_t c = 0; c < kTextColumns; ++c) {
    if (!t.texts[c][r]) continue;
    sep();
    str(kTextNames[c], t.text.Text(t.texts[c][r]), false);
  }
  if (t.registered[r]) {
    sep();
    out->append("\"registered_at\":\"" + FormatIsoTime(FromSeconds(t.registered[r])) + "\"");
  }
  if (!std::isnan(t.ltv[r])) {
    sep();
    out->append("\"ltv\":");
    stream::json::AppendNumber(out, t.ltv[r]);
  }
  out->append("},\"behaviour\":{\"active_events\":" + std::to_string(t.active_events[r]));
  num("reads", t.reads[r]);
  num("pays", t.pays[r]);
  num("shares", t.shares[r]);
  num("conversions", t.conversions[r]);
  time("last_active", t.last_active[r]);
  const double decayed = t.activity[r] * std::exp2(-static_cast<double>(now - FromSeconds(t.activity_ref[r])) /
                                                   static_cast<double>(stream::kDecayHalfLife));
  num("activity", t.activity[r] ? decayed : 0);
  num("night_share", t.night[r] / 255.0);
  out->append(",\"located\":");
  out->append(t.cell[r] ? "true" : "false");
  out->append("},\"interests\":[");
  bool first = true;
  for (size_t i = 0; i < stream::kTopInterests; ++i) {
    if (!t.tag_share[r][i]) continue;
    if (!first) out->push_back(',');
    first = false;
    char key[16];
    std::snprintf(key, sizeof key, "#%08x", t.tag_key[r][i]);
    out->append("{\"key\":\"");
    out->append(key);
    out->append("\",\"share\":");
    stream::json::AppendNumber(out, t.tag_share[r][i] / 255.0);
    out->push_back('}');
  }
  out->append("],\"social\":{\"friends\":");
  out->append(t.friends[r] == kNoFriends ? "null" : std::to_string(t.friends[r]));
  out->append(",\"groups\":[");
  auto it = t.social.find(r);
  if (it != t.social.end()) {
    for (size_t i = 0; i < it->second.groups.size(); ++i) {
      if (i) out->push_back(',');
      AppendString(out, it->second.groups[i]);
    }
  }
  out->append("],\"group_features\":{");
  if (it != t.social.end()) {
    for (size_t i = 0; i < it->second.features.size(); ++i) {
      if (i) out->push_back(',');
      AppendString(out, it->second.features[i].first);
      out->push_back(':');
      stream::json::AppendNumber(out, it->second.features[i].second);
    }
  }
  out->append("}}}");
  return true;
}

bool ProfileStore::Has(std::string_view tenant, std::string_view user) const { return t_->Find(tenant, user) >= 0; }

UserClass ProfileStore::ClassOf(const stream::AppliedEvent& e) {
  const std::uint32_t* slot = e.user.slots ? &e.user.slots->slot[0] : nullptr;
  if (slot && *slot) return t_->ClassAt(*slot - 1, e.event.ts);
  return ClassOf(e.event.tenant, e.event.user_id, e.event.ts);
}

UserClass ProfileStore::ClassOf(std::string_view tenant, std::string_view user, Micros now) {
  const std::int64_t r = t_->Find(tenant, user);
  return r < 0 ? UserClass::kLowFrequency : t_->ClassAt(static_cast<std::uint32_t>(r), now);
}

bool ProfileStore::TextField(std::string_view tenant, std::string_view user, std::string_view field,
                             std::string* out) const {
  Table& t = *t_;
  const std::int64_t found = t.Find(tenant, user);
  if (found < 0) return false;
  const auto r = static_cast<std::uint32_t>(found);
  if (field == "name") {
    *out = t.name[r];
    return !out->empty();
  }
  if (field == "age") {
    if (t.age[r] == kAge255) return false;
    *out = std::to_string(t.age[r]);
    return true;
  }
  for (int f = kRegion; f <= kOccupation; ++f) {
    if (field == FieldName(f)) {
      *out = t.text.Text(t.texts[static_cast<size_t>(TextColumn(f))][r]);
      return !out->empty();
    }
  }
  return false;
}

size_t ProfileStore::Match(const Segment& segment, std::string_view tenant, Micros now,
                           const std::function<bool(std::string_view)>& fn) {
  Table& t = *t_;
  const std::int64_t code = t.tenants.Find(tenant);
  if (code < 0 || t.rows() == 0) return 0;
  if (segment.UsesClass()) t.RefreshClasses(static_cast<std::uint32_t>(code), now);
  const Table::Eval eval{t, now, t.rows()};
  Bits bits = eval.Run(segment.root());
  size_t count = 0;
  for (size_t w = 0; w < bits.size(); ++w) {
    std::uint64_t word = bits[w];
    while (word) {
      const auto i = static_cast<std::uint32_t>(w * 64 + static_cast<size_t>(std::countr_zero(word)));
      word &= word - 1;
      if (t.tenant[i] != code) continue;
      ++count;
      if (fn && !fn(t.UserId(i))) return count;
    }
  }
  return count;
}

size_t ProfileStore::ForEachFollower(std::string_view tenant, std::string_view account,
                                     const std::function<bool(std::string_view)>& fn) {
  Table& t = *t_;
  const std::int64_t code = t.tenants.Find(tenant);
  auto it = t.follows.find(stream::KeyOf(account));
  if (code < 0 || it == t.follows.end()) return 0;
  size_t n = 0;
  for (std::uint32_t r : it->second) {
    if (t.tenant[r] != code) continue;
    ++n;
    if (!fn(t.UserId(r))) break;
  }
  return n;
}

std::array<size_t, kClassCount> ProfileStore::ClassCounts(std::string_view tenant, Micros now) {
  std::array<size_t, kClassCount> out{};
  Table& t = *t_;
  const std::int64_t code = t.tenants.Find(tenant);
  if (code < 0) return out;
  for (std::uint32_t i = 0; i < t.rows(); ++i) {
    if (t.tenant[i] == code) ++out[static_cast<size_t>(t.ClassAt(i, now))];
  }
  return out;
}

std::unique_ptr<ProfileView> ProfileStore::View(std::string_view tenant, std::string_view user, Micros now) {
  const std::int64_t r = t_->Find(tenant, user);
  if (r < 0) return nullptr;
  return std::make_unique<RowView>(t_.get(), static_cast<std::uint32_t>(r), now);
}

Status ProfileStore::Load(stream::StateReader& reader) {
  Table& t = *t_;
  size_t bad = 0;
  auto row_of = [&](std::string_view suffix) {
    auto it = t.index.find(suffix);
    return it != t.index.end() ? it->second : t.Add(std::string(suffix));
  };
  HERALD_RETURN_IF_ERROR(reader.Scan("", [&](std::string_view suffix, std::string_view value) {
    if (!t.DecodeAttributes(row_of(suffix), value)) ++bad;
    return true;
  }));
  HERALD_RETURN_IF_ERROR(reader.For(store::StateTag::kProfileActivity).Scan("", [&](std::string_view suffix, std::string_view value) {
    if (!t.DecodeActivity(row_of(suffix), value)) ++bad;
    return true;
  }));
  HERALD_RETURN_IF_ERROR(reader.For(store::StateTag::kProfileFollow).Scan("", [&](std::string_view suffix, std::string_view) {
    if (suffix.size() < 10 || suffix[suffix.size() - 9] != '\0') {
      ++bad;
      return true;
    }
    ByteReader rd(suffix.substr(suffix.size() - 8));
    std::uint64_t account = 0;
    rd.FixedBE(&account);
    AddSorted(t.follows[account], row_of(suffix.substr(0, suffix.size() - 9)));
    return true;
  }));
  if (bad) log::Error("unreadable profile records skipped", {{"partition", t.partition}, {"records", bad}});
  return Status::Ok();
}

void ProfileStore::OnEvent(stream::AppliedEvent& e) {
  using stream::EventType;
  const stream::Event& ev = e.event;
  switch (ev.type) {
    case EventType::kSent:
    case EventType::kDelivered:
    case EventType::kDismissed:
    case EventType::kNotInterested:
    case EventType::kComplaint:
    case EventType::kQueued:
    case EventType::kExpired:
    case EventType::kRefused:
    case EventType::kOnline:
    case EventType::kOffline:
      return;  // nothing of the profile changes
    default: break;
  }
  Table& t = *t_;
  const std::uint32_t r = t.RowOf(e);
  if (e.user.features) t.Sync(r, *e.user.features);
  switch (ev.type) {
    case EventType::kRegister:
      if (!t.registered[r] || Seconds(ev.ts) < t.registered[r]) {
        t.registered[r] = Seconds(ev.ts);
        t.MarkDirty(r, kAttrsDirty);
      }
      break;
    case EventType::kLocation:
      if (ev.cell) t.cell[r] = ev.cell;
      break;
    case EventType::kFollow:
    case EventType::kUnfollow:
      if (!ev.account_id.empty()) {
        const std::uint64_t account = stream::KeyOf(ev.account_id);
        const bool add = ev.type == EventType::kFollow;
        auto& list = t.follows[account];
        if (add) {
          AddSorted(list, r);
        } else {
          RemoveSorted(list, r);
        }
        t.follow_ops.push_back({r, account, add});
      }
      break;
    default: break;
  }
  t.MarkDirty(r, kActivityDirty);
}

void ProfileStore::OnUserUpdate(const stream::UserUpdate& u, const Clock&) {
  if (!u.profile) return;
  ProfilePatch p;
  if (Status s = DecodePatch(*u.profile, &p); !s.ok()) {
    log::Error("undecodable profile update skipped", {{"partition", t_->partition}, {"error", s.message()}});
    return;
  }
  Table& t = *t_;
  const std::uint32_t r = t.FindOrAdd(u.tenant, u.user_id);
  t.ApplyPatch(r, p);
  t.MarkDirty(r, kAttrsDirty);
}

void ProfileStore::Checkpoint(stream::CheckpointWriter& w) {
  Table& t = *t_;
  stream::CheckpointWriter act = w.For(store::StateTag::kProfileActivity);
  stream::CheckpointWriter fol = w.For(store::StateTag::kProfileFollow);
  for (std::uint32_t r : t.dirty_rows) {
    if (t.dirty[r] & kAttrsDirty) w.Put(*t.key[r], t.EncodeAttributes(r));
    if (t.dirty[r] & kActivityDirty) act.Put(*t.key[r], t.EncodeActivity(r));
    t.dirty[r] = 0;
  }
  t.dirty_rows.clear();
  std::string k;
  for (const auto& op : t.follow_ops) {
    k = *t.key[op.row];
    k.push_back('\0');
    ByteWriter bw(&k);
    bw.FixedBE(op.account);
    if (op.add) {
      fol.Put(k, "");
    } else {
      fol.Delete(k);
    }
  }
  t.follow_ops.clear();
}

}  // namespace herald::profile
