// JSON text helpers: string escaping for the JSON herald writes (compact attrs,
// features, push payloads), a reader of a flat object's members for the hot
// paths that read attrs (no document is built), and a plain validator that finds
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

// Reads the members of a JSON object one by one without building a document:
//   MemberReader r(attrs); std::string_view key, raw;
//   while (r.Next(&key, &raw)) { ... }   // raw: the member's value as written
// Keys are compared as written (with no escapes decoded). Next() returns false at
// the end, or at the first malformed member (then ok() is false).
class MemberReader {
 public:
  explicit MemberReader(std::string_view text);
  bool Next(std::string_view* key, std::string_view* raw);
  bool ok() const { return ok_; }

 private:
  bool SkipValue();
  void SkipSpace();
  std::string_view s_;
  std::size_t pos_ = 0;
  bool ok_ = true, first_ = true, done_ = false;
};

// The value of a raw string member, unescaped (false when raw is no string).
bool StringValue(std::string_view raw, std::string* out);
// The value of a raw number member (false when raw is no number).
bool NumberValue(std::string_view raw, double* out);

struct SyntaxError {
  std::size_t offset = 0;  // byte offset of the first bad byte (or the end)
  std::string reason;      // e.g. "expected ',' or '}'"
};

// The first syntax error of `text` as one JSON document (RFC 8259, UTF-8,
// surrounding whitespace allowed, nesting at most 1024 deep), or nullopt when
// `text` is valid JSON.
std::optional<SyntaxError> FindSyntaxError(std::string_view text);

}  // namespace herald::stream::json
