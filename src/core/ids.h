// Identifiers on the wire: tenants, users, devices, accounts, messages, campaigns.
//
// An id is 1..128 bytes of printable ASCII other than space, '/', '+', '#' and
// '"'. The exclusions keep every id safe inside an MQTT topic ("u/<user_id>") and a
// store key.
#pragma once

#include <string_view>

#include "core/status.h"

namespace herald {

constexpr size_t kMaxIdBytes = 128;

// Ok when `id` is a valid id; otherwise InvalidArgument naming `field`.
Status ValidateId(std::string_view field, std::string_view id);

}  // namespace herald
