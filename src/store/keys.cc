#include "store/keys.h"

#include "core/bytes.h"

namespace herald::store {

std::string PartitionPrefix(PartitionId p) {
  std::string k;
  ByteWriter(&k).FixedBE(static_cast<std::uint16_t>(p));
  return k;
}

std::string PartitionTagPrefix(PartitionId p, StateTag tag) {
  std::string k = PartitionPrefix(p);
  k.push_back(static_cast<char>(tag));
  return k;
}

std::string PartitionKey(PartitionId p, StateTag tag, std::string_view suffix) {
  std::string k = PartitionTagPrefix(p, tag);
  k.append(suffix);
  return k;
}

std::string UserKey(PartitionId p, StateTag tag, std::string_view tenant, std::string_view user_id) {
  std::string k;
  k.reserve(4 + tenant.size() + user_id.size());
  k = PartitionTagPrefix(p, tag);
  k.append(tenant);
  k.push_back('\0');
  k.append(user_id);
  return k;
}

bool ParsePartitionKey(std::string_view key, PartitionId* p, StateTag* tag, std::string_view* suffix) {
  ByteReader r(key);
  std::uint16_t part;
  std::uint8_t t;
  if (!r.FixedBE(&part) || !r.Byte(&t)) return false;
  *p = part;
  *tag = static_cast<StateTag>(t);
  *suffix = r.Rest();
  return true;
}

}  // namespace herald::store
