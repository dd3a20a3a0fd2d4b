// JSON request bodies for the low-volume routes (nlohmann-json). High-volume
// ingest parses with simdjson in its own module instead.
#pragma once

#include <nlohmann/json.hpp>

#include "api/http.h"

namespace herald::api {

// Parses the request body as one JSON object. On failure returns a 400 response
// naming the byte offset of the syntax error, or saying what the top level was.
// Exceptions from the parser are caught here and never leave this function.
Result<nlohmann::json> ParseJsonObject(const HttpRequest& req);

// A 200 (or `status`) response with `body` serialised.
HttpResponse JsonResponse(const nlohmann::json& body, int status = 200);

}  // namespace herald::api
