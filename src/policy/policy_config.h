// The policy's settings: [policy]. Every number of the rules in docs/policy.md.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace herald::policy {

struct PolicyConfig {
  // Global per-user rules.
  std::uint64_t daily_cap = 5;  // pushes a user gets per local day, over all accounts
  std::string quiet_start = "22:30";
  std::string quiet_end = "07:30";
  std::uint64_t dedup_window_s = 86400;
  // Account types.
  std::uint64_t service_monthly_cap = 4;
  // New followers.
  std::uint64_t new_follower_days = 3;
  std::uint64_t new_follower_max = 5;
  std::uint64_t steady_from_day = 7;
  std::uint64_t steady_per_day = 1;
  // Fatigue.
  std::uint64_t open_window_s = 86400;
  std::uint64_t silence_after_unopened = 3;
  std::uint64_t silence_s = 48 * 3600;
  std::uint64_t downgrade_after_unopened = 5;
  std::uint64_t downgrade_per_week = 2;
  // "Not interested" and complaints, per user and account.
  std::uint64_t not_interested_block_days = 30;
  std::uint64_t complaint_block_days = 90;
  double not_interested_weight = 0.5;
  double complaint_weight = 0.25;
  // Accounts' reputation over all their followers.
  std::uint64_t reputation_window_days = 7;
  std::uint64_t reputation_min_pushes = 100;
  double complaint_marks = 3;
  double downweight_rate = 0.02;
  double downweight_factor = 0.5;
  double throttle_rate = 0.05;
  double throttle_reach = 0.2;
  std::uint64_t reputation_refresh_s = 60;
  // Inspection.
  std::uint64_t decisions_kept = 50;
  std::uint64_t decisions_ttl_s = 30 * 86400;

  // Derived, filled by Resolve(): minutes after local midnight.
  int quiet_start_min = 22 * 60 + 30;
  int quiet_end_min = 7 * 60 + 30;
  // Parses the quiet-hour strings into the minutes above. InvalidArgument naming
  // the key for a bad time.
  Status Resolve();
};

// "HH:MM" (00:00..23:59) to minutes after midnight.
Result<int> ParseClockTime(std::string_view text);

config::Section<PolicyConfig> PolicyConfigSection();

}  // namespace herald::policy
