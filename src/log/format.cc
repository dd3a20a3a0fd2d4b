// Encoding and naming helpers for the on-disk format described in format.h.
#include "log/format.h"

#include <charconv>
#include <cstdio>

#include "log/crc32c.h"

namespace herald::eventlog::format {

void AppendRecord(std::string* out, std::uint64_t offset, std::int64_t timestamp_us,
                  std::string_view payload, bool continues) {
  char header[kHeaderSize];
  EncodeFixed32(header + kLengthOffset,
                static_cast<std::uint32_t>(payload.size()) | (continues ? kContinuesFlag : 0u));
  EncodeFixed64(header + kRecordOffsetOffset, offset);
  EncodeFixed64(header + kTimestampOffset, static_cast<std::uint64_t>(timestamp_us));
  std::uint32_t crc = crc32c::Value(header + kLengthOffset, kHeaderSize - kLengthOffset);
  crc = crc32c::Extend(crc, payload.data(), payload.size());
  EncodeFixed32(header + kCrcOffset, crc);
  out->append(header, kHeaderSize);
  out->append(payload.data(), payload.size());
}

// The CRC covers length, offset and timestamp too: a record moved or renumbered
// by a bug or by a misdirected write fails the check like a flipped payload bit.
bool CrcMatches(const char* record, std::uint32_t length) {
  std::uint32_t actual =
      crc32c::Value(record + kLengthOffset, kHeaderSize - kLengthOffset + std::size_t{length});
  return actual == DecodeFixed32(record + kCrcOffset);
}

std::string SegmentFileName(std::uint64_t base_offset) {
  char buf[kSegmentNameDigits + 8];
  std::snprintf(buf, sizeof buf, "%020llu.log", static_cast<unsigned long long>(base_offset));
  return buf;
}

bool ParseSegmentFileName(std::string_view name, std::uint64_t* base_offset) {
  if (name.size() != kSegmentNameDigits + kSegmentSuffix.size()) return false;
  if (name.substr(kSegmentNameDigits) != kSegmentSuffix) return false;
  std::string_view digits = name.substr(0, kSegmentNameDigits);
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *base_offset);
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

}  // namespace herald::eventlog::format
