// `herald bench engine`: planning speed of a "now" campaign to the followers of an
// account, on a real node (no gateway: the pushes are decided, rendered and
// appended as sent events, not delivered).
#pragma once

#include <string>
#include <vector>

namespace herald::app {

int BenchEngine(const std::vector<std::string>& args);
// `herald bench auction`: contentions for a user's slot ranked and priced per
// second on one core (engine/auction.h), 5 candidates each by default.
int BenchAuction(const std::vector<std::string>& args);
// `herald bench digest`: daily digests assembled per second on one core: each
// user's followed subscription accounts' articles scored by the CTR model for the
// user, ranked, and the payload written (engine/digest.h).
int BenchDigest(const std::vector<std::string>& args);

}  // namespace herald::app
