#include "model/registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace herald::model {

Status WriteFileAtomic(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("cannot write " + tmp);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      ::close(fd);
      return Status::IoError("write failed: " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return Status::IoError("fsync failed: " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError("cannot rename " + tmp);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

std::string ModelRegistry::PathOf(std::uint32_t version) const {
  char name[32];
  std::snprintf(name, sizeof name, "v%06u.hmdl", version);
  return dir_ + "/" + name;
}

Result<std::shared_ptr<const Learner>> ModelRegistry::LoadVersion(std::uint32_t version) const {
  std::ifstream in(PathOf(version), std::ios::binary);
  if (!in) return Status::NotFound("model version " + std::to_string(version) + ": no snapshot file");
  std::stringstream buf;
  buf << in.rdbuf();
  auto learner = DeserializeLearner(buf.str());
  if (!learner.ok()) {
    return Status::FailedPrecondition("model version " + std::to_string(version) + ": " + learner.status().message());
  }
  return std::shared_ptr<const Learner>(std::move(*learner));
}

Result<std::unique_ptr<ModelRegistry>> ModelRegistry::Open(const std::string& dir, const std::string& name,
                                                           const Clock* clock, size_t keep) {
  const std::string path = dir + "/" + name;
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IoError("cannot create " + path + ": " + ec.message());
  std::unique_ptr<ModelRegistry> r(new ModelRegistry(path, clock, std::max<size_t>(keep, 2)));
  std::ifstream in(path + "/manifest.json");
  if (!in) return r;  // a new model
  std::stringstream buf;
  buf << in.rdbuf();
  auto j = nlohmann::json::parse(buf.str(), nullptr, false);
  if (!j.is_object() || !j.contains("versions") || !j["versions"].is_array()) {
    return Status::Corruption(path + "/manifest.json: not a model manifest");
  }
  for (const auto& v : j["versions"]) {
    if (!v.is_object() || !v.contains("version") || !v["version"].is_number_unsigned()) {
      return Status::Corruption(path + "/manifest.json: a version without a number");
    }
    ModelVersion m;
    m.version = v["version"].get<std::uint32_t>();
    m.created_at = v.value("created_at", Micros{0});
    m.kind = v.value("kind", std::string());
    m.samples = v.value("samples", std::uint64_t{0});
    m.holdout_logloss = v.value("holdout_logloss", 0.0);
    m.holdout_auc = v.value("holdout_auc", 0.0);
    r->versions_.push_back(m);
  }
  if (j.contains("promoted") && j["promoted"].is_array()) {
    for (const auto& p : j["promoted"]) {
      if (p.is_number_unsigned()) r->promoted_.push_back(p.get<std::uint32_t>());
    }
  }
  // Serve the newest promoted version that loads.
  while (!r->promoted_.empty()) {
    auto learner = r->LoadVersion(r->promoted_.back());
    if (learner.ok()) {
      r->Serve(*learner, r->promoted_.back());
      break;
    }
    r->warning_ += learner.status().message() + "; ";
    r->promoted_.pop_back();
  }
  return r;
}

std::uint32_t ModelRegistry::current_version() const {
  std::lock_guard<std::mutex> l(mu_);
  return promoted_.empty() ? 0 : promoted_.back();
}

void ModelRegistry::Serve(std::shared_ptr<const Learner> learner, std::uint32_t version) {
  served_.store(std::make_shared<const ServedModel>(ServedModel{std::move(learner), version}));
}

Status ModelRegistry::WriteManifest() {
  nlohmann::json versions = nlohmann::json::array();
  for (const auto& v : versions_) {
    versions.push_back({{"version", v.version},
                        {"created_at", v.created_at},
                        {"kind", v.kind},
                        {"samples", v.samples},
                        {"holdout_logloss", v.holdout_logloss},
                        {"holdout_auc", v.holdout_auc}});
  }
  nlohmann::json j = {{"current", promoted_.empty() ? 0u : promoted_.back()},
                      {"promoted", promoted_},
                      {"versions", versions}};
  return WriteFileAtomic(dir_ + "/manifest.json", j.dump(2));
}

Result<ModelVersion> ModelRegistry::Publish(const Learner& learner, std::uint64_t samples, double holdout_logloss,
                                            double holdout_auc, bool promote) {
  std::lock_guard<std::mutex> l(mu_);
  ModelVersion v;
  v.version = versions_.empty() ? 1 : versions_.back().version + 1;
  v.created_at = clock_->Now();
  v.kind = learner.config().kind;
  v.samples = samples;
  v.holdout_logloss = holdout_logloss;
  v.holdout_auc = holdout_auc;
  HERALD_RETURN_IF_ERROR(WriteFileAtomic(PathOf(v.version), learner.Serialize()));
  versions_.push_back(v);
  if (promote) promoted_.push_back(v.version);
  // Keep the latest versions (never the one in service); older ones leave the
  // promotion history with their file.
  while (versions_.size() > keep_ && versions_.front().version != (promoted_.empty() ? 0 : promoted_.back())) {
    const std::uint32_t old = versions_.front().version;
    promoted_.erase(std::remove(promoted_.begin(), promoted_.end(), old), promoted_.end());
    versions_.erase(versions_.begin());
    std::filesystem::remove(PathOf(old));
  }
  HERALD_RETURN_IF_ERROR(WriteManifest());
  if (promote) Serve(learner.Clone(), v.version);
  return v;
}

Status ModelRegistry::Promote(std::uint32_t version) {
  std::lock_guard<std::mutex> l(mu_);
  if (std::none_of(versions_.begin(), versions_.end(), [&](const ModelVersion& v) { return v.version == version; })) {
    return Status::NotFound("no model version " + std::to_string(version));
  }
  auto learner = LoadVersion(version);
  if (!learner.ok()) return learner.status();
  promoted_.push_back(version);
  HERALD_RETURN_IF_ERROR(WriteManifest());
  Serve(*learner, version);
  return Status::Ok();
}

Status ModelRegistry::Rollback() {
  std::lock_guard<std::mutex> l(mu_);
  if (promoted_.size() < 2) return Status::FailedPrecondition("no earlier promoted version to roll back to");
  const std::uint32_t previous = promoted_[promoted_.size() - 2];
  auto learner = LoadVersion(previous);
  if (!learner.ok()) return learner.status();
  promoted_.pop_back();
  HERALD_RETURN_IF_ERROR(WriteManifest());
  Serve(*learner, previous);
  return Status::Ok();
}

std::vector<ModelVersion> ModelRegistry::List() const {
  std::lock_guard<std::mutex> l(mu_);
  return versions_;
}

}  // namespace herald::model
