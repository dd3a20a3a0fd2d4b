// DeviceRegistry: devices bound to users, and the tokens they connect with.
//
// A device connects with username = device id and password = its token. A token
// is "<tenant>.<nonce>.<mac>": mac = HMAC-SHA256(secret, tenant \0 device \0 user \0
// nonce), base64url. The secret is generated once per data directory. Registering
// a device again issues a new nonce, which revokes every older token; Revoke()
// removes the device. Only the current nonce is stored, never a token.
//
// Thread-safe: the API registers and revokes, the gateway authenticates.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/status.h"
#include "store/db.h"

namespace herald::mqtt {

struct DeviceIdentity {
  std::string tenant;
  std::string user_id;
  std::string device_id;
};

inline constexpr const char* kDevicesFamily = "devices";

class DeviceRegistry {
 public:
  // Loads devices (and the token secret, creating it on first use) from `db`.
  static Result<std::unique_ptr<DeviceRegistry>> Open(store::Db* db, const Clock* clock);
  // Records that Open() could not read: reported in the log and skipped.
  size_t skipped_records() const { return skipped_; }

  // Binds `device_id` to `user_id` in `tenant` and returns a fresh token. Older
  // tokens of the device stop working.
  Result<std::string> Register(const std::string& tenant, const std::string& user_id,
                               const std::string& device_id);

  // Removes the device; its tokens stop working. NotFound if it does not exist.
  Status Revoke(const std::string& tenant, const std::string& device_id);

  // Checks a CONNECT's credentials. Unauthenticated on any mismatch.
  Result<DeviceIdentity> Authenticate(std::string_view username, std::string_view password) const;

 private:
  struct Device {
    std::string user_id;
    std::string nonce;
  };
  DeviceRegistry(store::Db* db, store::ColumnFamily cf, const Clock* clock)
      : db_(db), cf_(cf), clock_(clock) {}
  std::string Mac(std::string_view tenant, std::string_view device, std::string_view user,
                  std::string_view nonce) const;

  store::Db* db_;
  store::ColumnFamily cf_;
  const Clock* clock_;
  std::string secret_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Device> devices_;  // GUARDED_BY(mu_); key tenant\0device
  size_t skipped_ = 0;
};

}  // namespace herald::mqtt
