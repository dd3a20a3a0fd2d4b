// Profile routes: user upserts and profiles, classes, segments.
#pragma once

#include "api/router.h"
#include "profile/classes.h"
#include "profile/profile_store.h"
#include "profile/segment_directory.h"
#include "stream/pipeline.h"

namespace herald::api {

struct ProfileRoutesContext {
  stream::Pipeline* pipeline = nullptr;
  stream::StateHandle<profile::ProfileStore> store;
  profile::SegmentDirectory* segments = nullptr;
  const std::array<profile::Strategy, profile::kClassCount>* strategies = nullptr;
  const std::vector<std::string>* holidays = nullptr;  // profile.holidays
  const Clock* clock = nullptr;
  size_t max_batch = 100'000;  // users per POST /v1/users
};

// Registers (tenant key):
//   POST   /v1/users                 bulk upsert: ids, zones, profiles, through the log
//   GET    /v1/users/{id}            the profile, zone and class
//   GET    /v1/classes               the 12 classes: users in each, strategy
//   POST   /v1/segments/preview      {"expr"|"segment","sample"} -> count and sample
//   POST   /v1/segments              save {"name","expr"}
//   GET    /v1/segments, GET/DELETE /v1/segments/{name}
// `ctx` must outlive the router.
void RegisterProfileRoutes(Router& router, const ProfileRoutesContext& ctx);

}  // namespace herald::api
