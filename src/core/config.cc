#include "core/config.h"

#include <arpa/inet.h>

#include <charconv>
#include <toml++/toml.h>

namespace herald {

std::string Endpoint::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool Endpoint::IsLoopback() const {
  if (host == "localhost" || host == "::1") return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return false;
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("address \"" + std::string(text) + "\" " + why +
                                   " (expected HOST:PORT)");
  };
  Endpoint ep;
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("has a malformed IPv6 host");
    }
    ep.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    ep.host = std::string(text.substr(0, colon));
    if (ep.host.find(':') != std::string::npos) return bad("needs brackets around an IPv6 host");
  }
  if (ep.host.empty()) return bad("has no host");
  std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5) return bad("has a bad port");
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return bad("has a bad port");
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p > 65535) return bad("has a port above 65535");
  ep.port = static_cast<std::uint16_t>(p);
  return ep;
}

namespace config {
namespace {

Value FromNode(const toml::node& n) {
  Value v;
  if (n.is_integer()) {
    v.kind = Value::Kind::kInteger;
    v.integer = *n.value<std::int64_t>();
    v.number = static_cast<double>(v.integer);
  } else if (n.is_floating_point()) {
    v.kind = Value::Kind::kFloat;
    v.number = *n.value<double>();
  } else if (n.is_boolean()) {
    v.kind = Value::Kind::kBool;
    v.boolean = *n.value<bool>();
  } else if (n.is_string()) {
    v.kind = Value::Kind::kString;
    v.string = *n.value<std::string>();
  } else if (const toml::array* a = n.as_array()) {
    v.kind = Value::Kind::kArray;
    for (const auto& e : *a) v.items.push_back(FromNode(e));
  }
  return v;
}

}  // namespace

Result<Document> Document::Parse(std::string_view text, std::string_view source) {
  // toml++ reports syntax errors by exception; they are translated here, at the edge.
  toml::table table;
  try {
    table = toml::parse(text, std::string(source));
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return Status::InvalidArgument(os.str());
  }
  Document d;
  for (const auto& [name, node] : table) {
    std::string sec(name.str());
    const toml::table* t = node.as_table();
    if (!t) {
      d.stray_.push_back(sec);
      continue;
    }
    auto& keys = d.sections_[sec];
    for (const auto& [key, value] : *t) keys[std::string(key.str())] = FromNode(value);
  }
  return d;
}

const Value* Document::Find(std::string_view section, std::string_view key) const {
  auto s = sections_.find(std::string(section));
  if (s == sections_.end()) return nullptr;
  auto k = s->second.find(std::string(key));
  return k == s->second.end() ? nullptr : &k->second;
}

std::string TomlQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string TomlNumber(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest text that reads back exactly
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

}  // namespace config
}  // namespace herald
