// The compiled form of a segment expression, shared by the per-user evaluator
// (segment.cc) and the columnar one (profile_table.cc). Private to the profile
// module.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "profile/segment.h"

namespace herald::profile {

enum class Cmp { kEq, kNe, kLt, kLe, kGt, kGe };
bool Compare(double a, Cmp c, double b);

struct Segment::Node {
  enum Kind { kAnd, kOr, kNot, kTextIn, kTextCmp, kNumberCmp, kTimeCmp, kTag, kFollows, kMember, kNear } kind;
  std::vector<std::shared_ptr<const Node>> children;  // kAnd, kOr: 2; kNot: 1
  int field = -1;
  Cmp cmp = Cmp::kEq;
  double number = 0;                // number; kTimeCmp: micros; kNear: meters
  std::vector<std::string> values;  // text values; the tag, account or group in [0]
  double lat = 0, lng = 0;
};

}  // namespace herald::profile
