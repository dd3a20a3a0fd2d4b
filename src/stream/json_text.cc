#include "stream/json_text.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>

namespace herald::stream::json {

void AppendString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendNumber(std::string* out, double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

MemberReader::MemberReader(std::string_view text) : s_(text) {
  SkipSpace();
  if (pos_ >= s_.size() || s_[pos_] != '{') {
    ok_ = !text.empty() ? false : true;  // an empty text has no members
    done_ = true;
    return;
  }
  ++pos_;
}

void MemberReader::SkipSpace() {
  while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
}

bool MemberReader::SkipValue() {
  // Strings, and objects and arrays to their matching close (strings inside skipped).
  int depth = 0;
  while (pos_ < s_.size()) {
    const char c = s_[pos_];
    if (c == '"') {
      ++pos_;
      while (pos_ < s_.size() && s_[pos_] != '"') pos_ += s_[pos_] == '\\' ? 2 : 1;
      if (pos_ >= s_.size()) return false;
      ++pos_;
      if (depth == 0) return true;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return true;  // the end of the enclosing object: a scalar ended
      if (--depth == 0) {
        ++pos_;
        return true;
      }
    } else if (c == ',' && depth == 0) {
      return true;
    }
    ++pos_;
  }
  return false;
}

bool MemberReader::Next(std::string_view* key, std::string_view* raw) {
  if (done_ || !ok_) return false;
  SkipSpace();
  if (pos_ < s_.size() && s_[pos_] == '}') {
    done_ = true;
    return false;
  }
  if (!first_) {
    if (pos_ >= s_.size() || s_[pos_] != ',') return ok_ = false;
    ++pos_;
    SkipSpace();
  }
  first_ = false;
  if (pos_ >= s_.size() || s_[pos_] != '"') return ok_ = false;
  const std::size_t k = ++pos_;
  while (pos_ < s_.size() && s_[pos_] != '"') pos_ += s_[pos_] == '\\' ? 2 : 1;
  if (pos_ >= s_.size()) return ok_ = false;
  *key = s_.substr(k, pos_ - k);
  ++pos_;
  SkipSpace();
  if (pos_ >= s_.size() || s_[pos_] != ':') return ok_ = false;
  ++pos_;
  SkipSpace();
  const std::size_t v = pos_;
  if (!SkipValue()) return ok_ = false;
  std::size_t end = pos_;
  while (end > v && (s_[end - 1] == ' ' || s_[end - 1] == '\t' || s_[end - 1] == '\n' || s_[end - 1] == '\r')) --end;
  if (end == v) return ok_ = false;
  *raw = s_.substr(v, end - v);
  return true;
}

namespace {
void AppendUtf8(std::string* out, std::uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

bool Hex4(std::string_view s, std::size_t at, std::uint32_t* v) {
  if (at + 4 > s.size()) return false;
  auto r = std::from_chars(s.data() + at, s.data() + at + 4, *v, 16);
  return r.ec == std::errc() && r.ptr == s.data() + at + 4;
}
}  // namespace

bool StringValue(std::string_view raw, std::string* out) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return false;
  out->clear();
  const std::string_view s = raw.substr(1, raw.size() - 2);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out->push_back(s[i]);
      continue;
    }
    if (++i >= s.size()) return false;
    switch (s[i]) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        std::uint32_t cp = 0;
        if (!Hex4(s, i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < s.size() && s[i + 1] == '\\' && s[i + 2] == 'u') {
          std::uint32_t lo = 0;
          if (Hex4(s, i + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
          }
        }
        AppendUtf8(out, cp);
        break;
      }
      default: return false;
    }
  }
  return true;
}

bool NumberValue(std::string_view raw, double* out) {
  if (raw.empty()) return false;
  const char* b = raw.data();
  if (*b == '+') return false;
  auto r = std::from_chars(b, b + raw.size(), *out);
  return r.ec == std::errc() && r.ptr == b + raw.size() && std::isfinite(*out);
}

namespace {

constexpr int kMaxDepth = 1024;

// Recursive-descent validator. Each method returns false at the first error,
// leaving pos_ on the offending byte and reason_ set.
class Validator {
 public:
  explicit Validator(std::string_view text) : s_(text) {}

  std::optional<SyntaxError> Run() {
    SkipSpace();
    if (!Value(0)) return SyntaxError{pos_, reason_};
    SkipSpace();
    if (pos_ != s_.size()) return SyntaxError{pos_, "trailing characters after the JSON value"};
    return std::nullopt;
  }

 private:
  bool Fail(const char* reason) {
    reason_ = pos_ >= s_.size() ? "unexpected end of input" : reason;
    return false;
  }
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool Value(int depth) {
    if (depth >= kMaxDepth) return Fail("nesting deeper than 1024 levels");
    switch (Peek()) {
      case '{':
        return Object(depth);
      case '[':
        return Array(depth);
      case '"':
        return String();
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        if (Peek() == '-' || (Peek() >= '0' && Peek() <= '9')) return Number();
        return Fail("expected a value");
    }
  }

  bool Object(int depth) {
    ++pos_;  // '{'
    SkipSpace();
    if (Peek() == '}') return ++pos_, true;
    for (;;) {
      if (Peek() != '"') return Fail("expected a string key");
      if (!String()) return false;
      SkipSpace();
      if (Peek() != ':') return Fail("expected ':'");
      ++pos_;
      SkipSpace();
      if (!Value(depth + 1)) return false;
      SkipSpace();
      if (Peek() == '}') return ++pos_, true;
      if (Peek() != ',') return Fail("expected ',' or '}'");
      ++pos_;
      SkipSpace();
    }
  }

  bool Array(int depth) {
    ++pos_;  // '['
    SkipSpace();
    if (Peek() == ']') return ++pos_, true;
    for (;;) {
      if (!Value(depth + 1)) return false;
      SkipSpace();
      if (Peek() == ']') return ++pos_, true;
      if (Peek() != ',') return Fail("expected ',' or ']'");
      ++pos_;
      SkipSpace();
    }
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool Digits() {
    if (!(Peek() >= '0' && Peek() <= '9')) return Fail("invalid number");
    while (Peek() >= '0' && Peek() <= '9') ++pos_;
    return true;
  }

  bool Number() {
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (!Digits()) {
      return false;
    }
    if (Peek() == '.') {
      ++pos_;
      if (!Digits()) return false;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!Digits()) return false;
    }
    return true;
  }

  bool String() {
    ++pos_;  // opening quote
    while (!AtEnd()) {
      auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') return ++pos_, true;
      if (c < 0x20) return Fail("control character in string");
      if (c == '\\') {
        if (!Escape()) return false;
      } else if (c >= 0x80) {
        if (!Utf8()) return false;
      } else {
        ++pos_;
      }
    }
    return Fail("unterminated string");
  }

  bool Escape() {
    ++pos_;  // backslash
    char c = Peek();
    if (c == 'u') {
      for (int i = 1; i <= 4; ++i) {
        if (!std::isxdigit(static_cast<unsigned char>(s_.size() > pos_ + i ? s_[pos_ + i] : 'x'))) {
          pos_ += i;
          return Fail("invalid \\u escape");
        }
      }
      pos_ += 5;
      return true;
    }
    if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
        c == 't') {
      return ++pos_, true;
    }
    return Fail("invalid escape");
  }

  // One UTF-8 sequence of 2..4 bytes; rejects overlong forms, surrogates and
  // code points above U+10FFFF.
  bool Utf8() {
    auto at = [&](std::size_t i) -> unsigned {
      return pos_ + i < s_.size() ? static_cast<unsigned char>(s_[pos_ + i]) : 0;
    };
    unsigned c = at(0);
    int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4) return Fail("invalid UTF-8");
    std::uint32_t cp = c & (0x7F >> n);
    for (int i = 1; i < n; ++i) {
      if ((at(i) & 0xC0) != 0x80) return Fail("invalid UTF-8");
      cp = cp << 6 | (at(i) & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return Fail("invalid UTF-8");
    }
    pos_ += n;
    return true;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  const char* reason_ = "";
};

}  // namespace

std::optional<SyntaxError> FindSyntaxError(std::string_view text) {
  return Validator(text).Run();
}

}  // namespace herald::stream::json
