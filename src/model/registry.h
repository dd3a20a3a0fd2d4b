// ModelRegistry: the versions of one model, on disk, and the one in service.
//
// Layout under <dir>/<name>/:
//   v000001.hmdl ...   snapshots (Learner::Serialize), written to a temporary file,
//                      fsynced and renamed into place, so a file is whole or absent
//   manifest.json      {"current":N,"promoted":[N,...],"versions":[{"version","created_at",
//                      "kind","samples","holdout_logloss","holdout_auc"}]}, replaced the same way
// A new version is published to readers atomically: Current() hands out an
// immutable snapshot (a shared_ptr load, no lock), and a reader keeps the one it
// holds. A snapshot that cannot be read (damaged, truncated) is refused with the
// reason and the version in service stays; at Open() the newest promoted version
// that loads is served. The latest `keep` versions are kept on disk.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "model/learner.h"

namespace herald::model {

struct ModelVersion {
  std::uint32_t version = 0;
  Micros created_at = 0;
  std::string kind;
  std::uint64_t samples = 0;
  double holdout_logloss = 0, holdout_auc = 0;
};

// The version in service and its learner, published together.
struct ServedModel {
  std::shared_ptr<const Learner> learner;
  std::uint32_t version = 0;
};

class ModelRegistry {
 public:
  static Result<std::unique_ptr<ModelRegistry>> Open(const std::string& dir, const std::string& name,
                                                     const Clock* clock, size_t keep = 10);

  // The model in service, or null when none was ever promoted.
  std::shared_ptr<const Learner> Current() const {
    auto s = served_.load();
    return s ? s->learner : nullptr;
  }
  // The same with its version number, or null.
  std::shared_ptr<const ServedModel> Served() const { return served_.load(); }
  std::uint32_t current_version() const;

  // Writes `learner` as a new version (durable before it returns) and, with
  // `promote`, puts it in service.
  Result<ModelVersion> Publish(const Learner& learner, std::uint64_t samples, double holdout_logloss,
                               double holdout_auc, bool promote);
  // Puts `version` in service (FailedPrecondition when its snapshot cannot be read;
  // the current one stays).
  Status Promote(std::uint32_t version);
  // Back to the version promoted before the current one.
  Status Rollback();
  std::vector<ModelVersion> List() const;
  // A warning from Open() (a damaged snapshot skipped), or empty.
  const std::string& open_warning() const { return warning_; }

 private:
  ModelRegistry(std::string dir, const Clock* clock, size_t keep) : dir_(std::move(dir)), clock_(clock), keep_(keep) {}
  std::string PathOf(std::uint32_t version) const;
  Result<std::shared_ptr<const Learner>> LoadVersion(std::uint32_t version) const;
  Status WriteManifest();  // holds mu_
  void Serve(std::shared_ptr<const Learner> learner, std::uint32_t version);

  std::string dir_;
  const Clock* clock_;
  size_t keep_;
  mutable std::mutex mu_;
  std::vector<ModelVersion> versions_;   // GUARDED_BY(mu_), ascending
  std::vector<std::uint32_t> promoted_;  // GUARDED_BY(mu_), in promotion order; back() is current
  std::atomic<std::shared_ptr<const ServedModel>> served_;
  std::string warning_;
};

// Atomically replaces `path` with `data` (temporary file, fsync, rename, fsync of
// the directory).
Status WriteFileAtomic(const std::string& path, std::string_view data);

}  // namespace herald::model
