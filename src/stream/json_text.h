// JSON text helpers private to the stream module: string escaping for the JSON
// that stream writes (compact attrs, features), and a plain validator that finds
// the first syntax error of a text and its byte offset.
//
// The validator is the slow path: simdjson parses every body, and only when it
// reports an error do we run this to tell the client exactly where the body is
// broken (simdjson's errors carry no position).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace herald::stream::json {

// Appends `s` to `out` as a JSON string literal: quoted, with '"', '\\' and the
// control characters escaped. `s` is taken as UTF-8 and copied byte for byte.
void AppendString(std::string* out, std::string_view s);

// Appends a finite double in the shortest form that reads back exactly
// ("0.5", "12", "1e+21"); non-finite values are written as 0.
void AppendNumber(std::string* out, double v);

struct SyntaxError {
  std::size_t offset = 0;  // byte offset of the first bad byte (or the end)
  std::string reason;      // e.g. "expected ',' or '}'"
};

// The first syntax error of `text` as one JSON document (RFC 8259, UTF-8,
// surrounding whitespace allowed, nesting at most 1024 deep), or nullopt when
// `text` is valid JSON.
std::optional<SyntaxError> FindSyntaxError(std::string_view text);

}  // namespace herald::stream::json
