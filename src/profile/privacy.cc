#include "profile/privacy.h"

#include <openssl/hmac.h>
#include <s2/s1angle.h>
#include <s2/s2cap.h>
#include <s2/s2cell_id.h>
#include <s2/s2cell_union.h>
#include <s2/s2earth.h>
#include <s2/s2latlng.h>
#include <s2/s2region_coverer.h>
#include <simdjson.h>

#include <cstring>
#include <mutex>

#include "stream/json_text.h"

namespace herald::profile {

std::uint64_t GeoCell(double lat, double lng) {
  return S2CellId(S2LatLng::FromDegrees(lat, lng).Normalized()).parent(kCellLevel).id();
}

std::string CellToken(std::uint64_t cell) { return S2CellId(cell).ToToken(); }

double CellDistance(std::uint64_t cell, double lat, double lng) {
  const S2LatLng c = S2CellId(cell).ToLatLng();
  return S2Earth::ToMeters(c.GetDistance(S2LatLng::FromDegrees(lat, lng)));
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> CoverDisc(double lat, double lng,
                                                               double meters) {
  const S2Cap cap(S2LatLng::FromDegrees(lat, lng).Normalized().ToPoint(), S2Earth::MetersToAngle(meters));
  S2RegionCoverer::Options o;
  o.set_max_level(kCellLevel);
  o.set_max_cells(16);
  S2RegionCoverer coverer(o);
  std::vector<S2CellId> cells;
  coverer.GetCovering(cap, &cells);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (S2CellId c : cells) {  // sorted and disjoint (a normalised union)
    const std::uint64_t a = c.range_min().id(), b = c.range_max().id();
    if (!out.empty() && out.back().second + 1 >= a) {
      out.back().second = std::max(out.back().second, b);
    } else {
      out.emplace_back(a, b);
    }
  }
  return out;
}

namespace {

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

}  // namespace

std::string KeyedHasher::TenantKey(std::string_view tenant) const {
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    auto it = keys_.find(tenant);
    if (it != keys_.end()) return it->second;
  }
  std::string label("herald-item-key\n");
  label.append(tenant);
  std::string key = Hmac(secret_, label);
  std::unique_lock<std::shared_mutex> l(mu_);
  return keys_.emplace(std::string(tenant), std::move(key)).first->second;
}

std::string KeyedHasher::Item(std::string_view tenant, std::string_view item) const {
  static const char* kHex = "0123456789abcdef";
  const std::string mac = Hmac(TenantKey(tenant), item);
  std::string out("h:");
  for (size_t i = 0; i < 16; ++i) {
    out.push_back(kHex[static_cast<unsigned char>(mac[i]) >> 4]);
    out.push_back(kHex[static_cast<unsigned char>(mac[i]) & 15]);
  }
  return out;
}

void PrivacyTransform::Apply(stream::Event& e) const {
  const bool located = e.lat && e.lng;
  if (!located && e.item.empty() && !e.lat && !e.lng) return;
  if (located) e.cell = GeoCell(*e.lat, *e.lng);
  e.lat.reset();
  e.lng.reset();
  if (!e.item.empty()) e.item = hasher_.Item(e.tenant, e.item);
  if (e.attrs.empty()) return;
  // Rebuild attrs without the coordinates and with the hashed item. The parser
  // wrote attrs as compact JSON of an object, so it parses.
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string text(e.attrs);
  simdjson::dom::object obj;
  if (parser.parse(text).get(obj) != simdjson::SUCCESS) {
    e.attrs.clear();  // never keep what could not be cleaned
    return;
  }
  std::string out(1, '{');
  for (auto field : obj) {
    if (field.key == "lat" || field.key == "lng" || field.key == "cell") continue;
    if (out.size() > 1) out.push_back(',');
    stream::json::AppendString(&out, field.key);
    out.push_back(':');
    if (field.key == "item" && !e.item.empty()) {
      stream::json::AppendString(&out, e.item);
    } else {
      out += simdjson::minify(field.value);
    }
  }
  if (e.cell) {
    if (out.size() > 1) out.push_back(',');
    out += "\"cell\":";
    stream::json::AppendString(&out, CellToken(e.cell));
  }
  out.push_back('}');
  e.attrs = std::move(out);
}

}  // namespace herald::profile
