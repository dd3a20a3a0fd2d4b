#include "mqtt/devices.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/ids.h"
#include "core/log.h"

namespace herald::mqtt {
namespace {

constexpr const char* kSecretKey = "!token-secret";  // holds no NUL: never a tenant key

std::string RandomToken(size_t bytes) {
  unsigned char raw[64];
  if (bytes > sizeof raw || RAND_bytes(raw, static_cast<int>(bytes)) != 1) std::abort();
  return Base64UrlEncode(raw, bytes);
}

}  // namespace

Result<std::unique_ptr<DeviceRegistry>> DeviceRegistry::Open(store::Db* db, const Clock* clock) {
  auto cf = db->Family(kDevicesFamily);
  if (!cf.ok()) return cf.status();
  std::unique_ptr<DeviceRegistry> reg(new DeviceRegistry(db, *cf, clock));
  auto secret = db->Get(*cf, kSecretKey);
  HERALD_RETURN_IF_ERROR(secret.status());
  if (secret->has_value()) {
    reg->secret_ = **secret;
  } else {
    reg->secret_ = RandomToken(32);
    store::WriteBatch b;
    b.Put(*cf, kSecretKey, reg->secret_);
    HERALD_RETURN_IF_ERROR(db->Write(std::move(b)));
  }
  Status bad;
  HERALD_RETURN_IF_ERROR(db->Scan(*cf, "", [&](std::string_view key, std::string_view value) {
    if (key.find('\0') == std::string_view::npos) return true;  // not a device record
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (!j.is_object() || !j.contains("user_id") || !j["user_id"].is_string() ||
        !j.contains("nonce") || !j["nonce"].is_string()) {
      // One unreadable record costs its device, not the whole server.
      ++reg->skipped_;
      std::string k(key);
      std::replace(k.begin(), k.end(), '\0', '/');
      log::Error("device record skipped: not a device record", {{"key", k}});
      return true;
    }
    reg->devices_[std::string(key)] = {j["user_id"].get<std::string>(), j["nonce"].get<std::string>()};
    return true;
  }));
  HERALD_RETURN_IF_ERROR(bad);
  return reg;
}

std::string DeviceRegistry::Mac(std::string_view tenant, std::string_view device,
                                std::string_view user, std::string_view nonce) const {
  std::string msg;
  msg.append(tenant).push_back('\0');
  msg.append(device).push_back('\0');
  msg.append(user).push_back('\0');
  msg.append(nonce);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &len);
  return Base64UrlEncode(md, len);
}

Result<std::string> DeviceRegistry::Register(const std::string& tenant, const std::string& user_id,
                                             const std::string& device_id) {
  HERALD_RETURN_IF_ERROR(ValidateId("user_id", user_id));
  HERALD_RETURN_IF_ERROR(ValidateId("device_id", device_id));
  std::string nonce = RandomToken(12);
  nlohmann::json j = {{"user_id", user_id}, {"nonce", nonce}, {"registered_at", clock_->Now()}};
  std::string key = store::TenantKey(tenant, device_id);
  std::unique_lock<std::shared_mutex> lock(mu_);
  store::WriteBatch b;
  b.Put(cf_, key, j.dump());
  HERALD_RETURN_IF_ERROR(db_->Write(std::move(b)));
  devices_[key] = {user_id, nonce};
  return tenant + "." + nonce + "." + Mac(tenant, device_id, user_id, nonce);
}

Status DeviceRegistry::Revoke(const std::string& tenant, const std::string& device_id) {
  std::string key = store::TenantKey(tenant, device_id);
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (!devices_.count(key)) return Status::NotFound("no device " + device_id);
  store::WriteBatch b;
  b.Delete(cf_, key);
  HERALD_RETURN_IF_ERROR(db_->Write(std::move(b)));
  devices_.erase(key);
  return Status::Ok();
}

Result<DeviceIdentity> DeviceRegistry::Authenticate(std::string_view username,
                                                    std::string_view password) const {
  auto denied = [] { return Status::Unauthenticated("bad device credentials"); };
  size_t dot1 = password.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : password.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || username.empty()) return denied();
  std::string_view tenant = password.substr(0, dot1);
  std::string_view nonce = password.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view mac = password.substr(dot2 + 1);
  std::string user;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = devices_.find(store::TenantKey(tenant, username));
    if (it == devices_.end() || it->second.nonce != nonce) return denied();
    user = it->second.user_id;
  }
  std::string expect = Mac(tenant, username, user, nonce);
  if (expect.size() != mac.size() || CRYPTO_memcmp(expect.data(), mac.data(), mac.size()) != 0) {
    return denied();
  }
  return DeviceIdentity{std::string(tenant), std::move(user), std::string(username)};
}

}  // namespace herald::mqtt
