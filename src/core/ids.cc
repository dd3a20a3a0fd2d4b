#include "core/ids.h"

#include <string>

namespace herald {

Status ValidateId(std::string_view field, std::string_view id) {
  if (id.empty()) return Status::InvalidArgument(std::string(field) + " must not be empty");
  if (id.size() > kMaxIdBytes) {
    return Status::InvalidArgument(std::string(field) + " is longer than 128 bytes");
  }
  for (char c : id) {
    if (c <= ' ' || c > '~' || c == '/' || c == '+' || c == '#' || c == '"') {
      return Status::InvalidArgument(std::string(field) +
                                     " may hold only printable ASCII without space, '/', '+', "
                                     "'#' or '\"'");
    }
  }
  return Status::Ok();
}

}  // namespace herald
