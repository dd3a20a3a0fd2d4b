#include "stream/ingest_keys.h"

#include "core/bytes.h"

namespace herald::stream {
namespace {

constexpr std::uint8_t kVersion = 1;

}  // namespace

std::string IngestKeys::KeyOf(std::string_view tenant, std::string_view key) {
  std::string k(tenant);
  k.push_back('\0');
  k.append(key);
  return k;
}

const IngestKeys::Entry* IngestKeys::Find(std::string_view tenant, std::string_view key) const {
  auto it = keys_.find(KeyOf(tenant, key));
  if (it == keys_.end() || it->second.expires_at <= clock_.Now()) return nullptr;
  return &it->second;
}

void IngestKeys::OnMark(const IngestMark& mark, Micros appended_at) {
  std::string k = KeyOf(mark.tenant, mark.key);
  keys_[k] = Entry{appended_at + ttl_, mark.digest};
  added_.push_back(std::move(k));
}

Status IngestKeys::Load(StateReader& reader) {
  Status bad;
  HERALD_RETURN_IF_ERROR(reader.Scan("", [&](std::string_view k, std::string_view v) {
    ByteReader r(v);
    std::uint8_t version;
    Entry e;
    if (!r.Byte(&version) || version != kVersion || !r.Zigzag(&e.expires_at) ||
        !r.String(&e.digest) || !r.done()) {
      bad = Status::Corruption("idempotency key record is malformed");
      return false;
    }
    keys_[std::string(k)] = std::move(e);
    return true;
  }));
  return bad;
}

void IngestKeys::Checkpoint(CheckpointWriter& w) {
  for (const std::string& k : added_) {
    auto it = keys_.find(k);
    if (it == keys_.end()) continue;
    std::string v;
    ByteWriter out(&v);
    out.Byte(kVersion);
    out.Zigzag(it->second.expires_at);
    out.String(it->second.digest);
    w.Put(k, v);
  }
  added_.clear();
  Micros now = clock_.Now();
  for (auto it = keys_.begin(); it != keys_.end();) {
    if (it->second.expires_at > now) {
      ++it;
      continue;
    }
    w.Delete(it->first);
    it = keys_.erase(it);
  }
}

}  // namespace herald::stream
