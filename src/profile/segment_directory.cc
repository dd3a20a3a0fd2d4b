#include "profile/segment_directory.h"

#include <mutex>

#include "core/log.h"
#include "store/keys.h"

namespace herald::profile {

Result<std::unique_ptr<SegmentDirectory>> SegmentDirectory::Load(store::Db* db) {
  auto cf = db->Family(kSegmentsFamily);
  if (!cf.ok()) return cf.status();
  std::unique_ptr<SegmentDirectory> dir(new SegmentDirectory(db, *cf));
  HERALD_RETURN_IF_ERROR(db->Scan(*cf, "", [&](std::string_view key, std::string_view value) {
    const size_t nul = key.find('\0');
    auto compiled = Segment::Compile(value);
    if (nul == std::string_view::npos || !compiled.ok()) {
      log::Error("saved segment skipped: it does not compile", {{"key", std::string(key)}});
      return true;
    }
    dir->segments_[std::string(key)] = {std::string(key.substr(nul + 1)), std::string(value), std::move(*compiled)};
    return true;
  }));
  return dir;
}

Status SegmentDirectory::Save(const std::string& tenant, const std::string& name, const std::string& expr,
                              size_t* error_position) {
  auto compiled = Segment::Compile(expr, error_position);
  if (!compiled.ok()) return compiled.status();
  const std::string key = store::TenantKey(tenant, name);
  std::unique_lock<std::shared_mutex> l(mu_);
  if (!segments_.count(key)) {
    size_t n = 0;
    const std::string prefix = store::TenantKey(tenant, "");
    for (auto it = segments_.lower_bound(prefix); it != segments_.end() && it->first.starts_with(prefix); ++it) ++n;
    if (n >= kMaxSegmentsPerTenant) {
      return Status::ResourceExhausted("a tenant keeps at most " + std::to_string(kMaxSegmentsPerTenant) + " segments");
    }
  }
  store::WriteBatch b;
  b.Put(cf_, key, expr);
  HERALD_RETURN_IF_ERROR(db_->Write(std::move(b)));
  segments_[key] = {name, expr, std::move(*compiled)};
  return Status::Ok();
}

std::optional<SavedSegment> SegmentDirectory::Find(const std::string& tenant, std::string_view name) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = segments_.find(store::TenantKey(tenant, std::string(name)));
  if (it == segments_.end()) return std::nullopt;
  return it->second;
}

std::vector<SavedSegment> SegmentDirectory::List(const std::string& tenant) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  std::vector<SavedSegment> out;
  const std::string prefix = store::TenantKey(tenant, "");
  for (auto it = segments_.lower_bound(prefix); it != segments_.end() && it->first.starts_with(prefix); ++it) {
    out.push_back(it->second);
  }
  return out;
}

Status SegmentDirectory::Remove(const std::string& tenant, std::string_view name) {
  const std::string key = store::TenantKey(tenant, std::string(name));
  std::unique_lock<std::shared_mutex> l(mu_);
  auto it = segments_.find(key);
  if (it == segments_.end()) return Status::NotFound("no segment named " + std::string(name));
  store::WriteBatch b;
  b.Delete(cf_, key);
  HERALD_RETURN_IF_ERROR(db_->Write(std::move(b)));
  segments_.erase(it);
  return Status::Ok();
}

}  // namespace herald::profile
