// Binary encoding for herald's durable and wire records: the event codec, the
// feature store, the broker's persisted messages, partition state and keys.
//
// Encodings (each a durable format once a record uses it; never change one, add
// a new record version instead):
//   varint   LEB128, unsigned: 7 bits per byte, low group first, high bit set on
//            every byte but the last; at most 10 bytes for 64 bits.
//   zigzag   a signed value as a varint of (v << 1) ^ (v >> 63), so that small
//            negative numbers stay short.
//   fixed    a fixed-width integer or IEEE 754 float, little-endian.
//   fixedBE  a fixed-width unsigned integer, big-endian: keys use it so that
//            RocksDB's bytewise order is numeric order.
//   string   a varint length, then the bytes.
//
// ByteWriter appends to a std::string it does not own. ByteReader reads from a
// view it does not own; every read returns false once the input runs out or is
// malformed, and keeps returning false after that, so a decoder can chain reads
// with && and check once. Neither allocates beyond the output string.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

namespace herald {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "fixed-width fields are stored by memcpy; byte-swap them on big-endian hosts");

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  void Byte(std::uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void Varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  void Zigzag(std::int64_t v) {
    Varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  template <typename T>
  void Fixed(T v) {
    static_assert(std::is_arithmetic_v<T>);
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    out_->append(buf, sizeof(T));
  }
  template <typename T>
  void FixedBE(T v) {
    static_assert(std::is_unsigned_v<T>);
    for (int i = static_cast<int>(sizeof(T)) - 1; i >= 0; --i) {
      out_->push_back(static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff));
    }
  }
  void String(std::string_view s) {
    Varint(s.size());
    out_->append(s);
  }
  // Bytes with no length: the caller's format knows where they end.
  void Raw(std::string_view s) { out_->append(s); }

  std::string& out() { return *out_; }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool Byte(std::uint8_t* v) {
    if (in_.empty()) return Fail();
    *v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Varint(std::uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return Fail();  // more than 10 bytes
  }
  // A varint that must fit in T.
  template <typename T>
  bool Uint(T* v) {
    static_assert(std::is_unsigned_v<T>);
    std::uint64_t u;
    if (!Varint(&u)) return false;
    if (u > std::numeric_limits<T>::max()) return Fail();
    *v = static_cast<T>(u);
    return true;
  }
  // A zigzag varint that must fit in T.
  template <typename T>
  bool Zigzag(T* v) {
    static_assert(std::is_signed_v<T>);
    std::uint64_t u;
    if (!Varint(&u)) return false;
    auto s = static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
    if (s < std::numeric_limits<T>::min() || s > std::numeric_limits<T>::max()) return Fail();
    *v = static_cast<T>(s);
    return true;
  }
  template <typename T>
  bool Fixed(T* v) {
    static_assert(std::is_arithmetic_v<T>);
    if (in_.size() < sizeof(T)) return Fail();
    std::memcpy(v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }
  template <typename T>
  bool FixedBE(T* v) {
    static_assert(std::is_unsigned_v<T>);
    if (in_.size() < sizeof(T)) return Fail();
    std::uint64_t u = 0;
    for (size_t i = 0; i < sizeof(T); ++i) u = u << 8 | static_cast<unsigned char>(in_[i]);
    *v = static_cast<T>(u);
    in_.remove_prefix(sizeof(T));
    return true;
  }
  // A length-prefixed string, viewed in the input (valid while the input is).
  bool String(std::string_view* s) {
    std::uint64_t n;
    if (!Varint(&n)) return false;
    if (n > in_.size()) return Fail();
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool String(std::string* s) {
    std::string_view v;
    if (!String(&v)) return false;
    s->assign(v.data(), v.size());
    return true;
  }
  // Exactly `n` bytes with no length prefix.
  bool Raw(size_t n, std::string_view* s) {
    if (n > in_.size()) return Fail();
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  // Everything left.
  std::string_view Rest() {
    std::string_view r = in_;
    in_ = {};
    return r;
  }

  bool done() const { return ok_ && in_.empty(); }
  bool ok() const { return ok_; }
  size_t remaining() const { return in_.size(); }

 private:
  bool Fail() {
    ok_ = false;
    in_ = {};
    return false;
  }

  std::string_view in_;
  bool ok_ = true;
};

}  // namespace herald
