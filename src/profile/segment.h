// Segment expressions: a small language that selects users by their profile,
// features and follows, compiled once and evaluated per user.
//
//   class in (student, new_user) and age >= 18 and region = "Guangdong"
//     and tag("finance") > 0.3 and last_active < 7d and follows("acct_42")
//   near(31.23, 121.47, 3km) or not (os = "ios")
//
// Grammar (keywords are case-sensitive, `and` binds tighter than `or`):
//   expr      := and ("or" and)*
//   and       := unary ("and" unary)*
//   unary     := "not" unary | "(" expr ")" | predicate
//   predicate := FIELD CMP value | FIELD "in" "(" value ("," value)* ")"
//              | "tag" "(" STRING ")" CMP NUMBER | "follows" "(" STRING ")"
//              | "member" "(" STRING ")"
//              | "near" "(" NUMBER "," NUMBER "," DISTANCE ")"
//   CMP       := "=" | "!=" | "<" | "<=" | ">" | ">="
//   value     := STRING | NUMBER | NAME | DURATION (30m, 12h, 7d)
// Fields: class, region, city, language, os, device, gender, occupation (text:
// = != in); age, friends, reads, pays, shares, ltv (numbers); last_active,
// registered (how long ago, compared with a DURATION: last_active < 7d means
// active within the last 7 days). tag("x") is the tag's share of the user's
// decayed interest weight (0..1); member("g") a group membership.
//
// Errors give the byte position and what was expected ("at 23: expected ')'").
// An expression is at most 65,536 bytes, nests at most 64 deep and has at most
// 256 predicates.
//
// Thread-safe once compiled: Matches() only reads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace herald::profile {

// What an expression reads of one user.
class ProfileView {
 public:
  virtual ~ProfileView() = default;
  virtual std::string_view Text(int field) const = 0;  // a text field, "" if unknown
  virtual double Number(int field) const = 0;          // NaN if unknown
  virtual Micros Time(int field) const = 0;            // 0 if never
  virtual double Tag(std::string_view tag) const = 0;  // interest weight, 0 if none
  virtual bool Follows(std::string_view account) const = 0;
  virtual bool Member(std::string_view group) const = 0;
  // True when the user's latest grid cell lies within `meters` of the point.
  virtual bool Near(double lat, double lng, double meters) const = 0;
};

// Field ids used by ProfileView.
enum Field : int {
  kClass = 0, kRegion, kCity, kLanguage, kOs, kDevice, kGender, kOccupation,  // text
  kAge, kFriends, kReads, kPays, kShares, kLtv,                               // numbers
  kLastActive, kRegistered,                                                   // times
  kFieldCount
};
const char* FieldName(int field);

inline constexpr size_t kMaxExpressionBytes = 65536;
inline constexpr int kMaxDepth = 64;
inline constexpr size_t kMaxPredicates = 256;
// near() radii start at 1 km (a few grid cells), so that no answer narrows a
// user down to one cell.
inline constexpr double kMinNearMeters = 1000;

class Segment {
 public:
  // Compiles `text`; on error, InvalidArgument "at N: ..." and *error_position = N.
  static Result<Segment> Compile(std::string_view text, size_t* error_position = nullptr);
  bool Matches(const ProfileView& user, Micros now) const;
  // True when the expression reads the user's class.
  bool UsesClass() const;
  // The expression as compiled, with only the parentheses it needs.
  std::string ToString() const;

  struct Node;  // segment_ast.h
  const Node& root() const;

 private:
  std::shared_ptr<const Node> root_;
};

}  // namespace herald::profile
