// SegmentDirectory: the saved segments of every tenant (POST/GET/DELETE
// /v1/segments), by name, durable in their own column family.
//
// Records, in the "segments" family: tenant \0 name -> the expression text.
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "profile/segment.h"
#include "store/db.h"

namespace herald::profile {

inline constexpr const char* kSegmentsFamily = "segments";
inline constexpr size_t kMaxSegmentsPerTenant = 10000;

struct SavedSegment {
  std::string name;
  std::string expr;
  Segment compiled;
};

class SegmentDirectory {
 public:
  static Result<std::unique_ptr<SegmentDirectory>> Load(store::Db* db);

  // Compiles and stores the segment (durable before it returns); replaces one of
  // the same name. InvalidArgument from Compile, with *error_position.
  Status Save(const std::string& tenant, const std::string& name, const std::string& expr,
              size_t* error_position = nullptr);
  std::optional<SavedSegment> Find(const std::string& tenant, std::string_view name) const;
  std::vector<SavedSegment> List(const std::string& tenant) const;
  // NotFound when there is no such segment.
  Status Remove(const std::string& tenant, std::string_view name);

 private:
  SegmentDirectory(store::Db* db, store::ColumnFamily cf) : db_(db), cf_(cf) {}
  store::Db* db_;
  store::ColumnFamily cf_;
  mutable std::shared_mutex mu_;
  std::map<std::string, SavedSegment, std::less<>> segments_;  // tenant \0 name
};

}  // namespace herald::profile
