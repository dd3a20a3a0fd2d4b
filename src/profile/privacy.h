// Privacy by construction: what herald keeps of where users are and what they
// read.
//
// - Location: only a grid cell is kept, an S2 cell of level 14 (about 567 m
//   across). Coordinates sent in events are turned into the cell at ingest,
//   before the event log, so they never reach the disk or the logs.
// - Browsing history: item ids are kept only as keyed hashes, HMAC-SHA256 with a
//   per-tenant key derived from the node's privacy secret. Without the secret,
//   the data directory does not reveal what a user read, and hashes of one
//   tenant do not match another's.
//
// PrivacyTransform applies both to every ingested event (stream::EventTransform).
#pragma once

#include <cstdint>
#include <map>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stream/event.h"

namespace herald::profile {

inline constexpr int kCellLevel = 14;

// The level-14 S2 cell id of a point (degrees).
std::uint64_t GeoCell(double lat, double lng);
// The cell's token ("35d2fc" style, as S2 prints it).
std::string CellToken(std::uint64_t cell);
// Meters from the centre of `cell` to the point.
double CellDistance(std::uint64_t cell, double lat, double lng);

// Ranges [first, last] of cell ids that hold every level-14 cell whose centre
// lies within `meters` of the point (and some that do not: check with
// CellDistance). Sorted, disjoint.
std::vector<std::pair<std::uint64_t, std::uint64_t>> CoverDisc(double lat, double lng,
                                                               double meters);

// Keyed hashing of item ids. Thread-safe.
class KeyedHasher {
 public:
  explicit KeyedHasher(std::string secret) : secret_(std::move(secret)) {}
  // "h:" and 32 hex digits: the first 128 bits of HMAC-SHA256(tenant key, item).
  std::string Item(std::string_view tenant, std::string_view item) const;

 private:
  std::string TenantKey(std::string_view tenant) const;
  std::string secret_;
  mutable std::shared_mutex mu_;
  mutable std::map<std::string, std::string, std::less<>> keys_;  // tenant -> key
};

class PrivacyTransform final : public stream::EventTransform {
 public:
  explicit PrivacyTransform(std::string secret) : hasher_(std::move(secret)) {}
  // attrs.lat/attrs.lng become Event::cell and attrs.cell (the token); attrs.item
  // and Event::item become the keyed hash.
  void Apply(stream::Event& event) const override;
  const KeyedHasher& hasher() const { return hasher_; }

 private:
  KeyedHasher hasher_;
};

}  // namespace herald::profile
