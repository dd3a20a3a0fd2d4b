// Configuration: how modules declare their settings, and how a TOML file is read.
//
// Each module owns its settings: a struct whose member initialisers are the
// defaults, and a config::Section<T> that names the struct's section of the
// file and describes every key (type, range, documentation). The assembly that
// puts modules together (node) lists the sections in a config::Schema over its
// aggregate struct. From that one description the schema
//   - parses a file over the defaults (unknown sections and keys, wrong types,
//     out-of-range values and impossible combinations are errors naming the key),
//   - renders the defaults as the documented TOML file that `herald config
//     defaults` prints (config/herald.toml is a copy of it, kept equal by a test),
// so that the file, the docs and the struct defaults cannot disagree.
//
// Core only parses: it knows no module's settings. TOML (toml++) stays in
// config.cc; a parsed file is a plain config::Document.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/status.h"

namespace herald {

// "host:port" or "[v6]:port". Port 0 asks the OS for a free port.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string ToString() const;
  bool empty() const { return host.empty(); }
  // True for 127.0.0.0/8, ::1 and "localhost".
  bool IsLoopback() const;
};
Result<Endpoint> ParseEndpoint(std::string_view text);

// What a durable write waits for: the OS (survives kill -9 of herald) or the
// disk (fsync; survives power loss).
enum class SyncMode { kProcess, kFsync };

namespace config {

// A value from a config file: a TOML scalar or an array of them.
struct Value {
  enum class Kind { kInteger, kFloat, kBool, kString, kArray, kOther };
  Kind kind = Kind::kOther;
  std::int64_t integer = 0;
  double number = 0;  // kFloat, and kInteger converted
  bool boolean = false;
  std::string string;
  std::vector<Value> items;
};

// A parsed file: [section] -> key -> value.
class Document {
 public:
  // InvalidArgument "<source>:<line>:<column>: <what>" on a TOML syntax error.
  static Result<Document> Parse(std::string_view text, std::string_view source);
  const Value* Find(std::string_view section, std::string_view key) const;
  const std::map<std::string, std::map<std::string, Value>>& sections() const { return sections_; }
  // Top-level keys that are not sections.
  const std::vector<std::string>& stray() const { return stray_; }

 private:
  std::map<std::string, std::map<std::string, Value>> sections_;
  std::vector<std::string> stray_;
};

// TOML text of a string (quoted, escaped), a number, a list.
std::string TomlQuote(std::string_view s);
std::string TomlNumber(double d);

// The settings of one module: one [section] of the file, read into a T.
template <typename T>
class Section {
 public:
  // Reads `v` into `out`; an error message without the key ("must be ...").
  using Read = std::function<Status(const Value& v, T& out)>;
  // The TOML text of the value in `in`.
  using Write = std::function<std::string(const T& in)>;
  struct Field {
    std::string key, doc;
    Read read;
    Write write;
  };

  // `doc` is the section's comment in the rendered file (may span lines).
  Section(std::string name, std::string doc) : name_(std::move(name)), doc_(std::move(doc)) {}

  template <typename M>
  Section& Uint(const char* key, M T::*m, std::uint64_t min, std::uint64_t max, std::string doc) {
    static_assert(std::is_unsigned_v<M>);
    return Add(key, std::move(doc),
               [m, min, max](const Value& v, T& out) {
                 if (v.kind != Value::Kind::kInteger) return Status::InvalidArgument("must be an integer");
                 if (v.integer < 0 || static_cast<std::uint64_t>(v.integer) < min ||
                     static_cast<std::uint64_t>(v.integer) > max) {
                   return Status::InvalidArgument("must be between " + std::to_string(min) +
                                                  " and " + std::to_string(max));
                 }
                 out.*m = static_cast<M>(v.integer);
                 return Status::Ok();
               },
               [m](const T& in) { return std::to_string(in.*m); });
  }
  Section& Double(const char* key, double T::*m, double min, double max, std::string doc) {
    return Add(key, std::move(doc),
               [m, min, max](const Value& v, T& out) {
                 if (v.kind != Value::Kind::kFloat && v.kind != Value::Kind::kInteger) {
                   return Status::InvalidArgument("must be a number");
                 }
                 if (v.number < min || v.number > max) {
                   return Status::InvalidArgument("must be between " + TomlNumber(min) + " and " +
                                                  TomlNumber(max));
                 }
                 out.*m = v.number;
                 return Status::Ok();
               },
               [m](const T& in) { return TomlNumber(in.*m); });
  }
  Section& Bool(const char* key, bool T::*m, std::string doc) {
    return Add(key, std::move(doc),
               [m](const Value& v, T& out) {
                 if (v.kind != Value::Kind::kBool) return Status::InvalidArgument("must be true or false");
                 out.*m = v.boolean;
                 return Status::Ok();
               },
               [m](const T& in) { return std::string(in.*m ? "true" : "false"); });
  }
  Section& String(const char* key, std::string T::*m, std::string doc) {
    return Add(key, std::move(doc),
               [m](const Value& v, T& out) {
                 if (v.kind != Value::Kind::kString) return Status::InvalidArgument("must be a string");
                 out.*m = v.string;
                 return Status::Ok();
               },
               [m](const T& in) { return TomlQuote(in.*m); });
  }
  // A string that must be one of `choices`.
  Section& Choice(const char* key, std::string T::*m, std::vector<std::string> choices,
                  std::string doc) {
    return Add(key, std::move(doc),
               [m, choices](const Value& v, T& out) {
                 for (const auto& c : choices) {
                   if (v.kind == Value::Kind::kString && v.string == c) {
                     out.*m = v.string;
                     return Status::Ok();
                   }
                 }
                 std::string list;
                 for (const auto& c : choices) list += (list.empty() ? "" : ", ") + TomlQuote(c);
                 return Status::InvalidArgument("must be one of " + list);
               },
               [m](const T& in) { return TomlQuote(in.*m); });
  }
  // "HOST:PORT"; with `allow_empty`, "" turns the listener off.
  Section& Address(const char* key, Endpoint T::*m, bool allow_empty, std::string doc) {
    return Add(key, std::move(doc),
               [m, allow_empty](const Value& v, T& out) {
                 if (v.kind != Value::Kind::kString) return Status::InvalidArgument("must be a string");
                 if (v.string.empty() && allow_empty) {
                   out.*m = Endpoint{};
                   return Status::Ok();
                 }
                 auto ep = ParseEndpoint(v.string);
                 if (!ep.ok()) return ep.status();
                 out.*m = *ep;
                 return Status::Ok();
               },
               [m](const T& in) { return TomlQuote((in.*m).empty() ? "" : (in.*m).ToString()); });
  }
  Section& Sync(const char* key, SyncMode T::*m, std::string doc) {
    return Add(key, std::move(doc),
               [m](const Value& v, T& out) {
                 if (v.kind == Value::Kind::kString && v.string == "process") {
                   out.*m = SyncMode::kProcess;
                 } else if (v.kind == Value::Kind::kString && v.string == "fsync") {
                   out.*m = SyncMode::kFsync;
                 } else {
                   return Status::InvalidArgument("must be \"process\" or \"fsync\"");
                 }
                 return Status::Ok();
               },
               [m](const T& in) {
                 return std::string(in.*m == SyncMode::kFsync ? "\"fsync\"" : "\"process\"");
               });
  }
  // An array of exactly `size` numbers in [min, max] (size 0: any length).
  Section& Doubles(const char* key, std::vector<double> T::*m, size_t size, double min, double max,
                   std::string doc) {
    return Add(key, std::move(doc),
               [m, size, min, max](const Value& v, T& out) {
                 std::string want = size ? "an array of " + std::to_string(size) + " numbers"
                                         : "an array of numbers";
                 if (v.kind != Value::Kind::kArray || (size && v.items.size() != size)) {
                   return Status::InvalidArgument("must be " + want);
                 }
                 std::vector<double> got;
                 for (const Value& e : v.items) {
                   if ((e.kind != Value::Kind::kFloat && e.kind != Value::Kind::kInteger) ||
                       e.number < min || e.number > max) {
                     return Status::InvalidArgument("entries must be numbers between " +
                                                    TomlNumber(min) + " and " + TomlNumber(max));
                   }
                   got.push_back(e.number);
                 }
                 out.*m = std::move(got);
                 return Status::Ok();
               },
               [m](const T& in) {
                 std::string s = "[";
                 for (size_t i = 0; i < (in.*m).size(); ++i) s += (i ? ", " : "") + TomlNumber((in.*m)[i]);
                 return s + "]";
               });
  }
  Section& Strings(const char* key, std::vector<std::string> T::*m, std::string doc) {
    return Add(key, std::move(doc),
               [m](const Value& v, T& out) {
                 if (v.kind != Value::Kind::kArray) return Status::InvalidArgument("must be an array of strings");
                 std::vector<std::string> got;
                 for (const Value& e : v.items) {
                   if (e.kind != Value::Kind::kString) return Status::InvalidArgument("must be an array of strings");
                   got.push_back(e.string);
                 }
                 out.*m = std::move(got);
                 return Status::Ok();
               },
               [m](const T& in) {
                 std::string s = "[";
                 for (size_t i = 0; i < (in.*m).size(); ++i) s += (i ? ", " : "") + TomlQuote((in.*m)[i]);
                 return s + "]";
               });
  }
  // Any other kind of setting.
  Section& Add(const char* key, std::string doc, Read read, Write write) {
    fields_.push_back({key, std::move(doc), std::move(read), std::move(write)});
    return *this;
  }
  // A rule over several keys of the section, run after reading (and by
  // Schema::Validate). Its message names the keys ("mqtt.tls_listen needs ...").
  Section& Check(std::function<Status(const T&)> check) {
    checks_.push_back(std::move(check));
    return *this;
  }

  const std::string& name() const { return name_; }
  const std::string& doc() const { return doc_; }
  const std::vector<Field>& fields() const { return fields_; }
  const std::vector<std::function<Status(const T&)>>& checks() const { return checks_; }

 private:
  std::string name_, doc_;
  std::vector<Field> fields_;
  std::vector<std::function<Status(const T&)>> checks_;
};

// The whole file: the sections of the modules put together in `Root`.
template <typename Root>
class Schema {
 public:
  // Adds the section of the member `m` of Root. Section names are unique.
  template <typename T>
  Schema& Add(T Root::*m, const Section<T>& s) {
    Erased e{s.name(), s.doc(), {}, {}};
    for (const auto& f : s.fields()) {
      e.fields.push_back({f.key, f.doc,
                          [m, read = f.read](const Value& v, Root& r) { return read(v, r.*m); },
                          [m, write = f.write](const Root& r) { return write(r.*m); }});
    }
    for (const auto& c : s.checks()) e.checks.push_back([m, c](const Root& r) { return c(r.*m); });
    sections_.push_back(std::move(e));
    return *this;
  }
  // A rule across sections.
  Schema& Check(std::function<Status(const Root&)> check) {
    checks_.push_back(std::move(check));
    return *this;
  }
  // A section that older files may still have: it is refused with `hint`
  // ("[events]: ...") rather than as an unknown section.
  Schema& Retired(std::string section, std::string hint) {
    retired_.emplace_back(std::move(section), std::move(hint));
    return *this;
  }

  // `base` overlaid with the settings in `text`. Every error in the file is
  // reported, "source: a.b: why; c.d: why".
  Result<Root> Parse(std::string_view text, std::string_view source, Root base) const {
    auto doc = Document::Parse(text, source);
    if (!doc.ok()) return doc.status();
    std::vector<std::string> errors;
    for (const auto& k : doc->stray()) {
      errors.push_back(k + ": unknown setting (settings live in sections such as [server])");
    }
    for (const auto& [sec, keys] : doc->sections()) {
      const Erased* s = FindSection(sec);
      if (!s) {
        std::string why = "unknown section";
        for (const auto& [name, hint] : retired_) {
          if (name == sec) why = hint;
        }
        errors.push_back("[" + sec + "]: " + why);
        continue;
      }
      for (const auto& [key, value] : keys) {
        const auto* f = FindField(*s, key);
        if (!f) {
          errors.push_back(sec + "." + key + ": unknown setting");
          continue;
        }
        Status st = f->read(value, base);
        if (!st.ok()) errors.push_back(sec + "." + key + ": " + st.message());
      }
    }
    if (errors.empty()) {
      for (const auto& s : sections_) {
        for (const auto& c : s.checks) {
          if (Status st = c(base); !st.ok()) errors.push_back(st.message());
        }
      }
    }
    if (!errors.empty()) {
      std::string msg = std::string(source) + ": ";
      for (size_t i = 0; i < errors.size(); ++i) msg += (i ? "; " : "") + errors[i];
      return Status::InvalidArgument(msg);
    }
    return base;
  }

  // The section rules and the rules across sections (run after command-line
  // flags are applied too).
  Status Validate(const Root& r) const {
    for (const auto& s : sections_) {
      for (const auto& c : s.checks) HERALD_RETURN_IF_ERROR(c(r));
    }
    for (const auto& c : checks_) HERALD_RETURN_IF_ERROR(c(r));
    return Status::Ok();
  }

  // The documented TOML file of `r`: `header`, then every section and key with
  // its comment.
  std::string Render(const Root& r, std::string_view header) const {
    std::string out(header);
    for (const auto& s : sections_) {
      out += "\n";
      out += Comment(s.doc, "");
      out += "[" + s.name + "]\n";
      for (const auto& f : s.fields) {
        out += Comment(f.doc, "");
        out += f.key + " = " + f.write(r) + "\n";
      }
    }
    return out;
  }

  // Every "section.key", in order.
  std::vector<std::string> Keys() const {
    std::vector<std::string> keys;
    for (const auto& s : sections_) {
      for (const auto& f : s.fields) keys.push_back(s.name + "." + f.key);
    }
    return keys;
  }

 private:
  struct ErasedField {
    std::string key, doc;
    std::function<Status(const Value&, Root&)> read;
    std::function<std::string(const Root&)> write;
  };
  struct Erased {
    std::string name, doc;
    std::vector<ErasedField> fields;
    std::vector<std::function<Status(const Root&)>> checks;
  };
  const Erased* FindSection(std::string_view name) const {
    for (const auto& s : sections_) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
  static const ErasedField* FindField(const Erased& s, std::string_view key) {
    for (const auto& f : s.fields) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }
  static std::string Comment(const std::string& doc, const char* indent) {
    std::string out;
    std::istringstream in(doc);
    for (std::string line; std::getline(in, line);) {
      out += std::string(indent) + (line.empty() ? "#" : "# " + line) + "\n";
    }
    return out;
  }

  std::vector<Erased> sections_;
  std::vector<std::function<Status(const Root&)>> checks_;
  std::vector<std::pair<std::string, std::string>> retired_;
};

}  // namespace config
}  // namespace herald
