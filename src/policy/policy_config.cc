#include "policy/policy_config.h"

#include "policy/rules.h"

namespace herald::policy {

Result<int> ParseClockTime(std::string_view t) {
  auto digit = [&](size_t i) { return i < t.size() && t[i] >= '0' && t[i] <= '9'; };
  if (t.size() != 5 || !digit(0) || !digit(1) || t[2] != ':' || !digit(3) || !digit(4)) {
    return Status::InvalidArgument("must be a local time \"HH:MM\"");
  }
  int h = (t[0] - '0') * 10 + (t[1] - '0'), m = (t[3] - '0') * 10 + (t[4] - '0');
  if (h > 23 || m > 59) return Status::InvalidArgument("must be a local time between 00:00 and 23:59");
  return h * 60 + m;
}

Status PolicyConfig::Resolve() {
  auto s = ParseClockTime(quiet_start);
  if (!s.ok()) return Status::InvalidArgument("policy.quiet_start: " + s.status().message());
  auto e = ParseClockTime(quiet_end);
  if (!e.ok()) return Status::InvalidArgument("policy.quiet_end: " + e.status().message());
  quiet_start_min = *s;
  quiet_end_min = *e;
  return Status::Ok();
}

config::Section<PolicyConfig> PolicyConfigSection() {
  using C = PolicyConfig;
  const std::string ring = std::to_string(kRecentSends);
  config::Section<C> s("policy",
                       "The rules every push passes (docs/policy.md): caps, new followers,\n"
                       "fatigue, \"not interested\" and complaints, quiet hours.");
  s.Uint("daily_cap", &C::daily_cap, 0, 255,
         "Pushes a user gets per local calendar day, over all accounts (marketing lane).");
  s.String("quiet_start", &C::quiet_start,
           "Quiet hours start, user's local time \"HH:MM\". A push that would land in\n"
           "them is deferred to quiet_end, or suppressed when it expires first.");
  s.String("quiet_end", &C::quiet_end, "Quiet hours end, user's local time \"HH:MM\".");
  s.Uint("dedup_window_s", &C::dedup_window_s, 0, 30ull * 86400,
         "A push whose collapse key or idempotency key the user got within this is a duplicate.");
  s.Uint("service_monthly_cap", &C::service_monthly_cap, 0, 255,
         "Pushes a service account sends one follower per calendar month of the user's zone.");
  s.Uint("new_follower_days", &C::new_follower_days, 1, 30,
         "The first days after a follow, in which an account sends at most new_follower_max.");
  s.Uint("new_follower_max", &C::new_follower_max, 0, kRecentSends,
         "Messages an account sends a new follower in the first new_follower_days days (at most " +
             ring + ").");
  s.Uint("steady_from_day", &C::steady_from_day, 1, 365,
         "From this day after the follow on, at most steady_per_day messages a local day;\n"
         "between new_follower_days and it, the trailing-window cap ramps linearly.");
  s.Uint("steady_per_day", &C::steady_per_day, 0, kRecentSends,
         "Messages an account sends a settled follower per local day.");
  s.Uint("open_window_s", &C::open_window_s, 60, 30ull * 86400,
         "A push not opened or clicked within this after delivery counts as unopened.");
  s.Uint("silence_after_unopened", &C::silence_after_unopened, 1, 255,
         "Consecutive unopened pushes that start a silence.");
  s.Uint("silence_s", &C::silence_s, 0, 30ull * 86400,
         "Length of the silence, from the moment the last of them became unopened.");
  s.Uint("downgrade_after_unopened", &C::downgrade_after_unopened, 1, 65535,
         "Unopened pushes since the last open that put the user in the downgrade channel.");
  s.Uint("downgrade_per_week", &C::downgrade_per_week, 0, kRecentSends,
         "Pushes in any 7 days while in the downgrade channel.");
  s.Uint("not_interested_block_days", &C::not_interested_block_days, 0, 3650,
         "Days a \"not interested\" mark keeps the account's pushes from that user.");
  s.Uint("complaint_block_days", &C::complaint_block_days, 0, 3650,
         "Days a complaint keeps the account's pushes from that user.");
  s.Double("not_interested_weight", &C::not_interested_weight, 0, 1,
           "The account's weight for the user is multiplied by this at each mark.");
  s.Double("complaint_weight", &C::complaint_weight, 0, 1,
           "The account's weight for the user is multiplied by this at each complaint.");
  s.Uint("reputation_window_days", &C::reputation_window_days, 1, 28,
         "Days of pushes and marks an account's not-interested rate is computed over.");
  s.Uint("reputation_min_pushes", &C::reputation_min_pushes, 1, 1'000'000'000,
         "Pushes an account needs in the window before its rate counts.");
  s.Double("complaint_marks", &C::complaint_marks, 1, 100,
           "A complaint counts as this many \"not interested\" marks in the rate.");
  s.Double("downweight_rate", &C::downweight_rate, 0, 1,
           "At this rate (marks per push) the account is down-weighted for everyone.");
  s.Double("downweight_factor", &C::downweight_factor, 0, 1,
           "The weight of a down-weighted account.");
  s.Double("throttle_rate", &C::throttle_rate, 0, 1,
           "At this rate the account is throttled: it reaches throttle_reach of its followers.");
  s.Double("throttle_reach", &C::throttle_reach, 0, 1,
           "Fraction of its followers a throttled account still reaches.");
  s.Uint("reputation_refresh_s", &C::reputation_refresh_s, 1, 86400,
         "Clock time between two refreshes of the accounts' rates from every partition.");
  s.Uint("decisions_kept", &C::decisions_kept, 1, 10000,
         "Decisions kept per user for GET /v1/users/{id}/decisions.");
  s.Uint("decisions_ttl_s", &C::decisions_ttl_s, 60, 365ull * 86400,
         "How long a decision is shown.");
  s.Check([](const C& c) {
    C copy = c;
    HERALD_RETURN_IF_ERROR(copy.Resolve());
    if (c.steady_from_day < c.new_follower_days) {
      return Status::InvalidArgument(
          "policy.steady_from_day must be at least policy.new_follower_days");
    }
    if (c.steady_per_day * c.new_follower_days > kRecentSends) {
      return Status::InvalidArgument("policy.steady_per_day x policy.new_follower_days must be at most " +
                                     std::to_string(kRecentSends) + " (the send times kept per follow)");
    }
    if (c.throttle_rate < c.downweight_rate) {
      return Status::InvalidArgument("policy.throttle_rate must be at least policy.downweight_rate");
    }
    return Status::Ok();
  });
  return s;
}

}  // namespace herald::policy
