#include "stream/layout.h"

#include <nlohmann/json.hpp>

#include "core/bytes.h"
#include "core/log.h"
#include "core/partition.h"
#include "store/keys.h"
#include "stream/feature_store.h"

namespace herald::stream {
namespace {

constexpr std::uint8_t kCheckpointVersion = 1;
constexpr size_t kMigrationBatch = 4096;

// Writes `b` once it is full (or when `force`), and starts a new one.
Status Flush(store::Db* db, store::WriteBatch* b, bool force) {
  if (b->empty() || (!force && b->size() < kMigrationBatch)) return Status::Ok();
  Status s = db->Write(std::move(*b));
  *b = store::WriteBatch();
  return s;
}

// Splits a layout-1 key "tenant \0 user_id".
bool SplitUserKey(std::string_view key, std::string_view* tenant, std::string_view* user) {
  size_t nul = key.find('\0');
  if (nul == std::string_view::npos || nul == 0 || nul + 1 == key.size()) return false;
  *tenant = key.substr(0, nul);
  *user = key.substr(nul + 1);
  return true;
}

}  // namespace

std::string EncodeCheckpointRecord(std::uint64_t next, Micros watermark) {
  std::string out;
  ByteWriter w(&out);
  w.Byte(kCheckpointVersion);
  w.Varint(next);
  w.Zigzag(watermark);
  return out;
}

bool DecodeCheckpointRecord(std::string_view bytes, std::uint64_t* next, Micros* watermark) {
  ByteReader r(bytes);
  std::uint8_t version;
  return r.Byte(&version) && version == kCheckpointVersion && r.Varint(next) &&
         r.Zigzag(watermark) && r.done();
}

Result<std::uint64_t> MigrateLayout1(store::Db* db, std::uint32_t partitions) {
  Partitioner parts(partitions);
  auto state = db->Family(store::kStateFamily);
  HERALD_RETURN_IF_ERROR(state.status());
  std::uint64_t migrated = 0;
  Status bad;
  store::WriteBatch out, drop;

  // Copies every record of one old family, then deletes the originals.
  auto migrate = [&](const char* family,
                     const std::function<bool(std::string_view, std::string_view)>& convert) -> Status {
    auto cf = db->Family(family);
    if (!cf.ok()) return Status::Ok();  // this directory never had it
    std::vector<std::string> keys;
    HERALD_RETURN_IF_ERROR(db->Scan(*cf, "", [&](std::string_view k, std::string_view v) {
      if (!convert(k, v)) return false;
      keys.emplace_back(k);
      ++migrated;
      bad = Flush(db, &out, false);
      return bad.ok();
    }));
    HERALD_RETURN_IF_ERROR(bad);
    HERALD_RETURN_IF_ERROR(Flush(db, &out, true));
    for (const auto& k : keys) {
      drop.Delete(*cf, k);
      HERALD_RETURN_IF_ERROR(Flush(db, &drop, false));
    }
    return Flush(db, &drop, true);
  };

  HERALD_RETURN_IF_ERROR(migrate("features", [&](std::string_view k, std::string_view v) {
    std::string_view tenant, user;
    if (!SplitUserKey(k, &tenant, &user) || !Deserialize(v).ok()) {
      bad = Status::Corruption("layout 1 features record cannot be migrated: " +
                               std::string(tenant) + "/" + std::string(user));
      return false;
    }
    out.Put(*state, store::UserKey(parts.PartitionOf(user), store::StateTag::kFeatures, tenant, user), v);
    return true;
  }));
  HERALD_RETURN_IF_ERROR(bad);
  HERALD_RETURN_IF_ERROR(migrate("users", [&](std::string_view k, std::string_view v) {
    std::string_view tenant, user;
    auto j = nlohmann::json::parse(v, nullptr, false);
    if (!SplitUserKey(k, &tenant, &user) || !j.is_object()) {
      bad = Status::Corruption("layout 1 user record cannot be migrated");
      return false;
    }
    std::string tz = j.contains("tz") && j["tz"].is_string() ? j["tz"].get<std::string>() : "";
    out.Put(*state, store::UserKey(parts.PartitionOf(user), store::StateTag::kUser, tenant, user),
            EncodeUserRecord(tz));
    return true;
  }));
  HERALD_RETURN_IF_ERROR(bad);
  HERALD_RETURN_IF_ERROR(migrate("stream_meta", [&](std::string_view k, std::string_view v) {
    // "ckpt/<p>" -> "<next offset> <watermark micros>"
    unsigned long long next = 0;
    long long wm = 0;
    unsigned p = 0;
    std::string key(k), value(v);
    if (std::sscanf(key.c_str(), "ckpt/%u", &p) != 1 || p >= partitions ||
        std::sscanf(value.c_str(), "%llu %lld", &next, &wm) != 2) {
      bad = Status::Corruption("layout 1 checkpoint record cannot be migrated: " + key);
      return false;
    }
    out.Put(*state, store::PartitionKey(p, store::StateTag::kCheckpoint, ""),
            EncodeCheckpointRecord(next, wm));
    return true;
  }));
  HERALD_RETURN_IF_ERROR(bad);
  return migrated;
}

}  // namespace herald::stream
