#include "profile/segment.h"

#include "profile/segment_ast.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace herald::profile {

const char* FieldName(int f) {
  static const char* kNames[] = {"class", "region",  "city",   "language", "os",  "device",
                                 "gender", "occupation", "age", "friends", "reads", "pays",
                                 "shares", "ltv",    "last_active", "registered"};
  static_assert(sizeof kNames / sizeof kNames[0] == kFieldCount);
  return f >= 0 && f < kFieldCount ? kNames[f] : "?";
}

bool Compare(double a, Cmp c, double b) {
  switch (c) {
    case Cmp::kEq: return a == b;
    case Cmp::kNe: return a != b;
    case Cmp::kLt: return a < b;
    case Cmp::kLe: return a <= b;
    case Cmp::kGt: return a > b;
    case Cmp::kGe: return a >= b;
  }
  return false;
}

namespace {

enum class Tok { kEnd, kName, kString, kNumber, kDuration, kDistance, kLParen, kRParen, kComma, kCmp };

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;
  std::string text;   // name or string
  double number = 0;  // number; duration in micros; distance in meters
  Cmp cmp = Cmp::kEq;
};

const char* CmpText(Cmp c) {
  switch (c) {
    case Cmp::kEq: return "=";
    case Cmp::kNe: return "!=";
    case Cmp::kLt: return "<";
    case Cmp::kLe: return "<=";
    case Cmp::kGt: return ">";
    case Cmp::kGe: return ">=";
  }
  return "?";
}

int FieldOf(std::string_view name) {
  for (int f = 0; f < kFieldCount; ++f) {
    if (name == FieldName(f)) return f;
  }
  return -1;
}
bool IsText(int f) { return f >= kClass && f <= kOccupation; }
bool IsTime(int f) { return f == kLastActive || f == kRegistered; }

struct Error {
  size_t pos;
  std::string message;
};

}  // namespace


namespace {

using Node = Segment::Node;
using NodePtr = std::shared_ptr<const Node>;

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) { Next(); }

  NodePtr Parse() {
    NodePtr e = Or(0);
    if (failed_) return nullptr;
    if (tok_.kind != Tok::kEnd) return Fail(tok_.pos, "expected \"and\", \"or\" or the end, got " + Describe(tok_));
    return e;
  }
  const Error& error() const { return error_; }

 private:
  // Lexer.
  void Next() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    tok_ = Token{};
    tok_.pos = i_;
    if (i_ >= s_.size()) return;
    const char c = s_[i_];
    if (c == '(') return Single(Tok::kLParen);
    if (c == ')') return Single(Tok::kRParen);
    if (c == ',') return Single(Tok::kComma);
    if (c == '=' || c == '!' || c == '<' || c == '>') {
      tok_.kind = Tok::kCmp;
      const bool eq = i_ + 1 < s_.size() && s_[i_ + 1] == '=';
      if (c == '!' && !eq) return Bad("expected \"!=\"");
      tok_.cmp = c == '=' ? Cmp::kEq : c == '!' ? Cmp::kNe : c == '<' ? (eq ? Cmp::kLe : Cmp::kLt) : (eq ? Cmp::kGe : Cmp::kGt);
      i_ += (c == '=' || !eq) ? 1 : 2;
      if (c == '=' && eq) ++i_;  // "==" is "="
      return;
    }
    if (c == '"') {
      ++i_;
      std::string out;
      while (i_ < s_.size() && s_[i_] != '"') {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
        out.push_back(s_[i_++]);
      }
      if (i_ >= s_.size()) return Bad("unterminated string");
      ++i_;
      tok_.kind = Tok::kString;
      tok_.text = std::move(out);
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || ((c == '-' || c == '.') && i_ + 1 < s_.size() &&
                                                          (std::isdigit(static_cast<unsigned char>(s_[i_ + 1])) || s_[i_ + 1] == '.'))) {
      const std::string rest(s_.substr(i_, 64));
      char* end = nullptr;
      const double v = std::strtod(rest.c_str(), &end);
      size_t used = static_cast<size_t>(end - rest.c_str());
      std::string unit;
      while (used < rest.size() && std::isalpha(static_cast<unsigned char>(rest[used]))) unit.push_back(rest[used++]);
      i_ += used;
      tok_.number = v;
      if (unit.empty()) {
        tok_.kind = Tok::kNumber;
      } else if (unit == "m" || unit == "h" || unit == "d" || unit == "s") {
        // "m" is minutes for durations and meters for distances: the parser decides.
        tok_.kind = Tok::kDuration;
        tok_.text = unit;
      } else if (unit == "km") {
        tok_.kind = Tok::kDistance;
        tok_.number = v * 1000;
      } else {
        return Bad("unknown unit \"" + unit + "\" (want s, m, h, d or km)");
      }
      if (!std::isfinite(v)) return Bad("number out of range");
      return;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i_;
      while (j < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '_')) ++j;
      tok_.kind = Tok::kName;
      tok_.text = std::string(s_.substr(i_, j - i_));
      i_ = j;
      return;
    }
    Bad(std::string("unexpected character '") + c + "'");
  }
  void Single(Tok k) {
    tok_.kind = k;
    ++i_;
  }
  void Bad(const std::string& msg) {
    Fail(tok_.pos, msg);
    tok_.kind = Tok::kEnd;
  }
  std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd: return "the end";
      case Tok::kName: return "\"" + t.text + "\"";
      case Tok::kString: return "a string";
      case Tok::kNumber: return "a number";
      case Tok::kDuration: return "a duration";
      case Tok::kDistance: return "a distance";
      case Tok::kLParen: return "'('";
      case Tok::kRParen: return "')'";
      case Tok::kComma: return "','";
      case Tok::kCmp: return std::string("'") + CmpText(t.cmp) + "'";
    }
    return "?";
  }
  NodePtr Fail(size_t pos, std::string msg) {
    if (!failed_) error_ = {pos, std::move(msg)};
    failed_ = true;
    return nullptr;
  }
  bool Expect(Tok k, const char* what) {
    if (failed_) return false;
    if (tok_.kind != k) {
      Fail(tok_.pos, std::string("expected ") + what + ", got " + Describe(tok_));
      return false;
    }
    Next();
    return !failed_;
  }
  bool IsWord(const char* w) const { return tok_.kind == Tok::kName && tok_.text == w; }

  // Grammar.
  NodePtr Or(int depth) {
    NodePtr left = And(depth);
    while (!failed_ && IsWord("or")) {
      Next();
      NodePtr right = And(depth);
      if (failed_) return nullptr;
      auto n = std::make_shared<Node>();
      n->kind = Node::kOr;
      n->children = {left, right};
      left = n;
    }
    return failed_ ? nullptr : left;
  }
  NodePtr And(int depth) {
    NodePtr left = Unary(depth);
    while (!failed_ && IsWord("and")) {
      Next();
      NodePtr right = Unary(depth);
      if (failed_) return nullptr;
      auto n = std::make_shared<Node>();
      n->kind = Node::kAnd;
      n->children = {left, right};
      left = n;
    }
    return failed_ ? nullptr : left;
  }
  NodePtr Unary(int depth) {
    if (failed_) return nullptr;
    if (depth >= kMaxDepth) return Fail(tok_.pos, "nested deeper than " + std::to_string(kMaxDepth));
    if (IsWord("not")) {
      Next();
      NodePtr inner = Unary(depth + 1);
      if (failed_) return nullptr;
      auto n = std::make_shared<Node>();
      n->kind = Node::kNot;
      n->children = {inner};
      return n;
    }
    if (tok_.kind == Tok::kLParen) {
      Next();
      NodePtr inner = Or(depth + 1);
      if (!Expect(Tok::kRParen, "')'")) return nullptr;
      return inner;
    }
    return Predicate();
  }
  NodePtr Predicate() {
    if (failed_) return nullptr;
    if (++predicates_ > kMaxPredicates) {
      return Fail(tok_.pos, "more than " + std::to_string(kMaxPredicates) + " predicates");
    }
    if (tok_.kind != Tok::kName) return Fail(tok_.pos, "expected a field, \"tag\", \"follows\", \"member\", \"near\", \"not\" or '(', got " + Describe(tok_));
    const Token name = tok_;
    auto n = std::make_shared<Node>();
    if (name.text == "tag" || name.text == "follows" || name.text == "member") {
      Next();
      if (!Expect(Tok::kLParen, "'('")) return nullptr;
      if (tok_.kind != Tok::kString) return Fail(tok_.pos, "expected a string, got " + Describe(tok_));
      n->values = {tok_.text};
      Next();
      if (!Expect(Tok::kRParen, "')'")) return nullptr;
      if (name.text == "follows" || name.text == "member") {
        n->kind = name.text == "follows" ? Node::kFollows : Node::kMember;
        return n;
      }
      n->kind = Node::kTag;
      if (tok_.kind != Tok::kCmp) return Fail(tok_.pos, "expected a comparison after tag(...), got " + Describe(tok_));
      n->cmp = tok_.cmp;
      Next();
      if (tok_.kind != Tok::kNumber) return Fail(tok_.pos, "expected a number, got " + Describe(tok_));
      n->number = tok_.number;
      Next();
      return failed_ ? nullptr : n;
    }
    if (name.text == "near") {
      Next();
      if (!Expect(Tok::kLParen, "'('")) return nullptr;
      double v[3] = {0, 0, 0};
      for (int k = 0; k < 3; ++k) {
        if (k == 2) {
          if (tok_.kind == Tok::kDuration && tok_.text == "m") {
            v[2] = tok_.number;  // meters
          } else if (tok_.kind == Tok::kDistance) {
            v[2] = tok_.number;
          } else {
            return Fail(tok_.pos, "expected a distance (500m, 3km), got " + Describe(tok_));
          }
        } else if (tok_.kind != Tok::kNumber) {
          return Fail(tok_.pos, std::string("expected the ") + (k == 0 ? "latitude" : "longitude") + ", got " + Describe(tok_));
        } else {
          v[k] = tok_.number;
        }
        const size_t at = tok_.pos;
        Next();
        if (k == 0 && (v[0] < -90 || v[0] > 90)) return Fail(at, "latitude must be between -90 and 90");
        if (k == 1 && (v[1] < -180 || v[1] > 180)) return Fail(at, "longitude must be between -180 and 180");
        if (k == 2 && (v[2] < kMinNearMeters || v[2] > 1000000)) {
          return Fail(at, "the distance must be between 1km and 1000km");
        }
        if (k < 2 && !Expect(Tok::kComma, "','")) return nullptr;
      }
      if (!Expect(Tok::kRParen, "')'")) return nullptr;
      n->kind = Node::kNear;
      n->lat = v[0];
      n->lng = v[1];
      n->number = v[2];
      return n;
    }
    const int field = FieldOf(name.text);
    if (field < 0) return Fail(name.pos, "unknown field \"" + name.text + "\"");
    n->field = field;
    Next();
    if (IsWord("in")) {
      if (!IsText(field)) return Fail(tok_.pos, std::string("\"in\" needs a text field; ") + FieldName(field) + " is not one");
      Next();
      if (!Expect(Tok::kLParen, "'('")) return nullptr;
      while (true) {
        if (tok_.kind != Tok::kString && tok_.kind != Tok::kName) return Fail(tok_.pos, "expected a value, got " + Describe(tok_));
        n->values.push_back(tok_.text);
        Next();
        if (tok_.kind == Tok::kComma) {
          Next();
          continue;
        }
        if (!Expect(Tok::kRParen, "',' or ')'")) return nullptr;
        break;
      }
      n->kind = Node::kTextIn;
      return n;
    }
    if (tok_.kind != Tok::kCmp) return Fail(tok_.pos, "expected a comparison or \"in\", got " + Describe(tok_));
    n->cmp = tok_.cmp;
    const size_t at = tok_.pos;
    Next();
    if (IsText(field)) {
      if (n->cmp != Cmp::kEq && n->cmp != Cmp::kNe) return Fail(at, std::string(FieldName(field)) + " is text: compare with = or !=");
      if (tok_.kind != Tok::kString && tok_.kind != Tok::kName) return Fail(tok_.pos, "expected a value, got " + Describe(tok_));
      n->values = {tok_.text};
      n->kind = Node::kTextCmp;
    } else if (IsTime(field)) {
      if (tok_.kind != Tok::kDuration) return Fail(tok_.pos, "expected a duration (30m, 12h, 7d), got " + Describe(tok_));
      const double unit = tok_.text == "s" ? 1 : tok_.text == "m" ? 60 : tok_.text == "h" ? 3600 : 86400;
      n->number = tok_.number * unit * kMicrosPerSecond;
      n->kind = Node::kTimeCmp;
    } else {
      if (tok_.kind != Tok::kNumber) return Fail(tok_.pos, "expected a number, got " + Describe(tok_));
      n->number = tok_.number;
      n->kind = Node::kNumberCmp;
    }
    Next();
    return failed_ ? nullptr : n;
  }

  std::string_view s_;
  size_t i_ = 0;
  size_t predicates_ = 0;
  Token tok_;
  bool failed_ = false;
  Error error_;
};

bool Eval(const Node& n, const ProfileView& u, Micros now) {
  switch (n.kind) {
    case Node::kAnd: return Eval(*n.children[0], u, now) && Eval(*n.children[1], u, now);
    case Node::kOr: return Eval(*n.children[0], u, now) || Eval(*n.children[1], u, now);
    case Node::kNot: return !Eval(*n.children[0], u, now);
    case Node::kTextIn: {
      const std::string_view v = u.Text(n.field);
      for (const auto& x : n.values) {
        if (v == x) return true;
      }
      return false;
    }
    case Node::kTextCmp: return (u.Text(n.field) == n.values[0]) == (n.cmp == Cmp::kEq);
    case Node::kNumberCmp: {
      const double v = u.Number(n.field);
      return !std::isnan(v) && Compare(v, n.cmp, n.number);
    }
    case Node::kTimeCmp: {
      const Micros t = u.Time(n.field);
      if (!t) return false;  // never: no age to compare
      return Compare(static_cast<double>(now - t), n.cmp, n.number);
    }
    case Node::kTag: return Compare(u.Tag(n.values[0]), n.cmp, n.number);
    case Node::kFollows: return u.Follows(n.values[0]);
    case Node::kMember: return u.Member(n.values[0]);
    case Node::kNear: return u.Near(n.lat, n.lng, n.number);
  }
  return false;
}

std::string Quote(const std::string& v) {
  std::string out(1, '"');
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// Operands of a chain of one operator (a and b and c), in order.
void Chain(const Node& n, Node::Kind kind, std::vector<const Node*>* out) {
  if (n.kind == kind) {
    Chain(*n.children[0], kind, out);
    Chain(*n.children[1], kind, out);
  } else {
    out->push_back(&n);
  }
}

// Prints with only the parentheses the grammar needs, so that the printed form
// nests no deeper than the expression it came from.
std::string Show(const Node& n, Node::Kind parent = Node::kOr) {
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.17g", v);
    return std::string(b);
  };
  switch (n.kind) {
    case Node::kAnd:
    case Node::kOr: {
      std::vector<const Node*> parts;
      Chain(n, n.kind, &parts);
      const bool wrap = parent == Node::kNot || (n.kind == Node::kOr && parent == Node::kAnd);
      std::string s = wrap ? std::string(1, '(') : std::string();
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i) s += n.kind == Node::kAnd ? " and " : " or ";
        s += Show(*parts[i], n.kind);
      }
      if (wrap) s += ')';
      return s;
    }
    case Node::kNot: return "not " + Show(*n.children[0], Node::kNot);
    case Node::kTextIn: {
      std::string s = std::string(FieldName(n.field)) + " in (";
      for (size_t i = 0; i < n.values.size(); ++i) s += (i ? ", " : "") + Quote(n.values[i]);
      return s + ")";
    }
    case Node::kTextCmp: return std::string(FieldName(n.field)) + " " + CmpText(n.cmp) + " " + Quote(n.values[0]);
    case Node::kNumberCmp: return std::string(FieldName(n.field)) + " " + CmpText(n.cmp) + " " + num(n.number);
    case Node::kTimeCmp: return std::string(FieldName(n.field)) + " " + CmpText(n.cmp) + " " + num(n.number / kMicrosPerSecond) + "s";
    case Node::kTag: return "tag(" + Quote(n.values[0]) + ") " + CmpText(n.cmp) + " " + num(n.number);
    case Node::kFollows: return "follows(" + Quote(n.values[0]) + ")";
    case Node::kMember: return "member(" + Quote(n.values[0]) + ")";
    case Node::kNear: return "near(" + num(n.lat) + ", " + num(n.lng) + ", " + num(n.number) + "m)";
  }
  return "?";
}

}  // namespace

Result<Segment> Segment::Compile(std::string_view text, size_t* error_position) {
  if (text.size() > kMaxExpressionBytes) {
    if (error_position) *error_position = kMaxExpressionBytes;
    return Status::InvalidArgument("at " + std::to_string(kMaxExpressionBytes) + ": the expression is longer than " +
                                   std::to_string(kMaxExpressionBytes) + " bytes");
  }
  Parser p(text);
  NodePtr root = p.Parse();
  if (!root) {
    if (error_position) *error_position = p.error().pos;
    return Status::InvalidArgument("at " + std::to_string(p.error().pos) + ": " + p.error().message);
  }
  Segment s;
  s.root_ = std::move(root);
  return s;
}

bool Segment::Matches(const ProfileView& user, Micros now) const { return Eval(*root_, user, now); }

namespace {
bool ReadsClass(const Node& n) {
  if (n.field == kClass && (n.kind == Node::kTextIn || n.kind == Node::kTextCmp)) return true;
  for (const auto& c : n.children) {
    if (ReadsClass(*c)) return true;
  }
  return false;
}
}  // namespace

bool Segment::UsesClass() const { return ReadsClass(*root_); }

std::string Segment::ToString() const { return Show(*root_); }

const Segment::Node& Segment::root() const { return *root_; }

}  // namespace herald::profile
