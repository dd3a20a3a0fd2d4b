// Base64url (RFC 4648 section 5) without padding, for tokens and keys that
// travel in URLs, headers and MQTT passwords.
#pragma once

#include <cstddef>
#include <string>

namespace herald {

// Encodes `n` bytes; appends to nothing, returns the text.
std::string Base64UrlEncode(const unsigned char* data, size_t n);

}  // namespace herald
