// libFuzzer target for the segment expression parser. For any input: Compile
// either fails with a position inside the input (or at the size limit) or
// succeeds, and then the compiled form printed by ToString() compiles again to
// the same text, and evaluating it on an empty profile terminates.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "profile/segment.h"

namespace herald::profile {
namespace {

struct Empty final : ProfileView {
  std::string_view Text(int) const override { return {}; }
  double Number(int) const override { return NAN; }
  Micros Time(int) const override { return 0; }
  double Tag(std::string_view) const override { return 0; }
  bool Follows(std::string_view) const override { return false; }
  bool Member(std::string_view) const override { return false; }
  bool Near(double, double, double) const override { return false; }
};

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "segment_fuzz: property violated: %s\n", what);
  std::abort();
}

}  // namespace
}  // namespace herald::profile

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace herald::profile;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  auto s = Segment::Compile(text, &pos);
  if (!s.ok()) {
    Check(pos <= std::max(size, kMaxExpressionBytes), "error position inside the input");
    return 0;
  }
  const std::string shown = s->ToString();
  auto again = Segment::Compile(shown);
  Check(again.ok(), "the printed form compiles");
  Check(again->ToString() == shown, "the printed form is stable");
  (void)s->Matches(Empty{}, 0);
  return 0;
}
