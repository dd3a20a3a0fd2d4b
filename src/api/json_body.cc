#include "api/json_body.h"

namespace herald::api {

Result<nlohmann::json> ParseJsonObject(const HttpRequest& req) {
  if (req.body.empty()) return Status::InvalidArgument("request body is empty; expected a JSON object");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    return Status::InvalidArgument("malformed JSON at byte " + std::to_string(e.byte) + ": " +
                                   std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
  }
  if (!j.is_object()) {
    return Status::InvalidArgument(std::string("expected a JSON object, got ") + j.type_name());
  }
  return j;
}

HttpResponse JsonResponse(const nlohmann::json& body, int status) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace herald::api
