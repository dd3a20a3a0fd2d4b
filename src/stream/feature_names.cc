// The process-wide names behind account and tag keys (features_internal.h).
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "stream/features_internal.h"

namespace herald::stream::internal {
namespace {

constexpr std::size_t kMaxNames = 1 << 20;

class NameTable {
 public:
  void Remember(std::uint64_t key, std::string_view name) {
    {
      std::shared_lock<std::shared_mutex> l(mu_);
      if (names_.size() >= kMaxNames || names_.count(key)) return;
    }
    std::unique_lock<std::shared_mutex> l(mu_);
    if (names_.size() < kMaxNames) names_.try_emplace(key, name);
  }

  bool Lookup(std::uint64_t key, std::string* name) const {
    std::shared_lock<std::shared_mutex> l(mu_);
    auto it = names_.find(key);
    if (it == names_.end()) return false;
    *name = it->second;
    return true;
  }

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::uint64_t, std::string> names_;  // GUARDED_BY(mu_)
};

NameTable& Table() {
  static auto* table = new NameTable;  // never destroyed: shards may outlive statics
  return *table;
}

}  // namespace

void RememberName(std::uint64_t key, std::string_view name) {
  Table().Remember(key, name);
}

bool LookupName(std::uint64_t key, std::string* name) {
  return Table().Lookup(key, name);
}

}  // namespace herald::stream::internal
